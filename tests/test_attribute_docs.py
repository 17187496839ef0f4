"""docs/attributes.md documents every name in tracer/attributes.py."""

from __future__ import annotations

from pathlib import Path

from shardscope.tracer import attributes as A

DOC = (Path(__file__).resolve().parents[1] / "docs" / "attributes.md").read_text(encoding="utf-8")


def _names() -> set[str]:
    names = {v for k, v in vars(A).items() if k.isupper() and isinstance(v, str) and "." in v}
    names |= {v for k, v in vars(A.SpanType).items() if k.isupper()}
    return names


def test_every_attribute_and_event_is_documented() -> None:
    missing = sorted(n for n in _names() if f"`{n}`" not in DOC)
    assert not missing, f"add these to docs/attributes.md: {missing}"


def test_genai_names_come_from_semconv() -> None:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes

    assert A.GEN_AI_PROVIDER_NAME == gen_ai_attributes.GEN_AI_PROVIDER_NAME == "gen_ai.provider.name"
    assert "gen_ai.system" not in _names()  # deprecated in favour of gen_ai.provider.name
