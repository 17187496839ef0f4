"""The scaffolds, visible (issue 17, item 9): docs/scaffolds.md holds every scaffold's
prompts and parameters as the code defines them, episodes record the prompts, and the app's
Scaffolds page shows them with every stored hash and the difference between two."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from shardscope.analysis.scaffold_cards import cards_markdown, diff_versions, scaffold_cards
from shardscope.tracer.queries.scaffolds import scaffold_versions
from shardscope.tracer.store import Store

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- generated: do not edit below this line -->\n"


def test_docs_page_matches_the_code() -> None:
    text = (ROOT / "docs" / "scaffolds.md").read_text(encoding="utf-8")
    assert text.split(MARK, 1)[1].rstrip("\n") == cards_markdown(scaffold_cards()).rstrip("\n"), (
        "docs/scaffolds.md is stale: regenerate its generated part from "
        "shardscope.analysis.scaffold_cards.cards_markdown(scaffold_cards())")
    for name in ("react-tools", "react-text", "plan-execute"):
        assert f"## `{name}`" in text
    assert "| `max_steps` | `6` |" in text and "| `max_tokens_per_call` | `256` |" in text


def test_two_hashes_differ_by_parameters_prompts_or_code() -> None:
    a = {"params": {"max_steps": 6, "temperature": 0.0}, "prompts": {"cue": "Thought:"}}
    b = {"params": '{"max_steps": 4, "temperature": 0.0}', "prompts": {"cue": "Thought: "}}
    diff = diff_versions(a, b)
    assert dict(diff.params) == {"max_steps": (6, 4)} and "cue" in diff.prompts
    assert not diff.code_only
    assert diff_versions(a, a).code_only  # same params and prompts, other hash: the code


def test_episodes_record_their_prompts(demo_store: Path) -> None:
    versions = scaffold_versions(Store(demo_store))
    assert set(versions.scaffold) == {"react-tools", "react-text"}
    row = versions[versions.scaffold == "react-text"].iloc[0]
    assert "Action Input:" in row.prompts and '"max_steps":6' in row.params


def test_the_app_has_a_scaffolds_page(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARDSCOPE_DB", str(demo_store))
    at = AppTest.from_file(str(ROOT / "ui" / "app_pages" / "scaffolds.py"), default_timeout=120)
    at.run()
    assert not at.exception
    assert [e.label for e in at.expander][:3] == [
        f"{c.name} · hash {c.hash[:12]}" for c in scaffold_cards()]
    shown = " ".join(c.value for c in at.code)
    assert "Action Input: the tool's arguments as a JSON object" in shown
    assert at.subheader[-1].value == "Difference between two hashes"
