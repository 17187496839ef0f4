"""The Lasso surrogate recovers planted additive shard effects and reports held-out R²."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from shardscope.analysis import attribution as attr
from shardscope.analysis.surrogate import fit_surrogate

pytest.importorskip("sklearn")

EFFECTS = {"S0": 6.0, "S1": 0.0, "S2": 2.0, "S3": 0.0, "S4": 0.0, "S5": 1.0}


@dataclass(frozen=True)
class Total:
    total: float


def planted(prompt: str, output: str) -> Total:
    # log p rises by each present shard's planted effect (plus a small interaction noise)
    value = -20.0 + sum(e for name, e in EFFECTS.items() if f"<{name}>" in prompt)
    return Total(value + 0.05 * np.sin(len(prompt)))


def test_the_surrogate_finds_the_planted_weights() -> None:
    shards = [attr.ShardText(n, "fact", (f"<{n}>",), {}) for n in EFFECTS]
    prompt = "task: " + " ".join(f"<{n}>" for n in EFFECTS) + " go"
    fit = fit_surrogate(prompt, "out", shards, planted, masks=48, alpha=0.01)  # type: ignore[arg-type]
    weights = dict(zip(fit.shards, fit.weights, strict=True))
    assert max(weights, key=lambda k: weights[k]) == "S0"
    assert weights["S0"] == pytest.approx(6.0, abs=0.3) and weights["S2"] == pytest.approx(2.0, abs=0.3)
    assert abs(weights["S1"]) < 0.2 and abs(weights["S3"]) < 0.2
    assert fit.r2_heldout > 0.95 and fit.masks == 48


def test_no_located_shard_is_an_error() -> None:
    with pytest.raises(attr.AttributionError, match="nothing to attribute"):
        fit_surrogate("plain", "out", [attr.ShardText("a", "fact", ("<a>",), {})], planted)  # type: ignore[arg-type]


def test_a_mask_removes_shards_as_single_shard_attribution_does() -> None:
    """A removed fact leaves its declared removed form (the whole prompt's removed form for
    the first one), a tool result every occurrence emptied in its frame; the old code put ""
    for the whole prompt, so every later shard of a mask was gone with it."""
    from shardscope.analysis.surrogate import masked_input

    prompt = "Q: Year? Fact A: 1066. Fact B: red.\\n<tool_response>\\n25\\n</tool_response> and 25"
    a = attr.ShardText("A", "fact", (prompt, "Fact A: 1066."), {},
                       removals={prompt: "Q: Year? Fact B: red.\\n<tool_response>\\n25\\n"
                                         "</tool_response> and 25", "Fact A: 1066.": "(none)"})
    b = attr.ShardText("B", "fact", ("Fact B: red.",), {}, removals={"Fact B: red.": ""})
    tool = attr.ShardText("calc", "tool_result", ("<tool_response>\\n25\\n</tool_response>", "25"),
                          {}, removals={"<tool_response>\\n25\\n</tool_response>":
                                        "<tool_response>\\n\\n</tool_response>", "25": ""},
                          parts=(("<tool_response>\\n25\\n</tool_response>", "25"),))
    keep = np.array
    assert masked_input(prompt, [a, b, tool], keep([False, True, True])) == (
        "Q: Year? Fact B: red.\\n<tool_response>\\n25\\n</tool_response> and 25")
    assert masked_input(prompt, [a, b, tool], keep([False, False, True])) == (
        "Q: Year? \\n<tool_response>\\n25\\n</tool_response> and 25")
    assert masked_input(prompt, [a, b, tool], keep([True, True, False])) == (
        "Q: Year? Fact A: 1066. Fact B: red.\\n<tool_response>\\n\\n</tool_response> and 25")
    assert masked_input(prompt, [b, a, tool], keep([False, False, False])) == (
        "Q: Year? (none) \\n<tool_response>\\n\\n</tool_response> and 25")


def test_a_mask_keeps_the_models_earlier_outputs_as_recorded() -> None:
    """Masked shards leave the model's own earlier outputs alone, as single-shard
    attribution does, while each removal moves them; a shard found only inside them is not
    located."""
    from shardscope.analysis.surrogate import located_in, masked_input

    said = "A=1 and B=2, I noted."
    first = "user: A=1 B=2\nassistant: "
    prompt = f"{first}{said}\nuser: and?"
    guard = attr.output_spans(prompt, [(first, said)])
    a = attr.ShardText("a", "fact", ("A=1",), {"A=1": "A=5"})
    b = attr.ShardText("b", "fact", ("B=2",), {"B=2": "B=6"})
    keep_none = np.array([False, False])
    assert masked_input(prompt, [a, b], keep_none) == "user:  \nassistant:  and , I noted.\nuser: and?"
    assert masked_input(prompt, [a, b], keep_none, guard) == f"user:  \nassistant: {said}\nuser: and?"
    only = f"assistant: {said}"
    assert located_in(prompt, a, guard)
    assert not located_in(only, a, attr.output_spans(only, [("assistant: ", said)]))
