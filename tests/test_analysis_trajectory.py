"""Actions, their normalization, alignment and first divergence (unit level)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shardscope.analysis import trajectory as T
from shardscope.config.errors import StoreError
from shardscope.scaffolds.types import ActionCall, StepAction, ToolCall


def tool(name: str, step: int = -1, **args: object) -> T.Action:
    return T.action_of(StepAction.tool_calls([ToolCall("c", name, args)]), step_index=step)


def final(answer: str, step: int = -1) -> T.Action:
    return T.action_of(StepAction.final_answer(answer), step_index=step)


def test_arguments_and_answers_are_normalized() -> None:
    assert tool("calc", expression=" 2 *  3 ").key == tool("calc", expression="2 * 3").key
    assert tool("add", a=2.0, b=3).key == tool("add", b=3, a=2).key
    assert tool("add", a=2.5).key != tool("add", a=2).key
    assert final("Twelve.").key == final("  twelve ").key
    assert T.action_of(None, "unknown tool 'foo'; tools: add").label == "protocol error: unknown tool 'foo'"
    assert T.action_of(StepAction.empty_reply()).kind == "none"
    assert T.action_of(StepAction.empty_reply(), "empty plan").label == "protocol error: empty plan"
    assert T.action_of(StepAction.protocol_error(), "no 'Action:' line").kind == "error"
    # A tool call stays a tool call when the tool turned out unknown (a protocol error).
    assert T.action_of(StepAction.tool_calls([ToolCall("c", "foo", {})]), "unknown tool 'foo'").kind == "tool"


def test_several_calls_in_one_step_are_one_action() -> None:
    action = T.action_of(StepAction.tool_calls([ToolCall("c1", "add", {"a": 1}),
                                                ToolCall("c2", "sql", {"query": "SELECT 1"})]))
    assert action.tool == "add+sql" and '"query":"select 1"' in action.detail


# --- the stored step action -----------------------------------------------------------------
EVERY_KIND = [
    StepAction.tool_calls([ToolCall("c1", "add", {"a": 2, "b": 3}), ToolCall("c2", "sql", {"query": "x"})]),
    StepAction.final_answer("5"),
    StepAction.plan("1. add\n2. report"),
    StepAction.note("a is 2."),
    StepAction.empty_reply(),
    StepAction.protocol_error(),
]


@pytest.mark.parametrize("action", EVERY_KIND, ids=lambda a: a.kind)
def test_step_actions_round_trip_through_their_stored_json(action: StepAction) -> None:
    stored = json.dumps(action.to_json())
    assert StepAction.from_json(stored) == action == StepAction.from_json(json.loads(stored))


def test_the_stored_json_keeps_the_columns_the_steps_view_reads() -> None:
    # The `steps` view's action_type and action_tool are $.type and $.tool of this object.
    assert EVERY_KIND[0].to_json() == {
        "type": "tool", "tool": "add", "arguments": {"a": 2, "b": 3},
        "calls": [{"tool": "add", "arguments": {"a": 2, "b": 3}}, {"tool": "sql", "arguments": {"query": "x"}}]}
    assert [a.to_json()["type"] for a in EVERY_KIND] == ["tool", "final", "plan", "note", "none", "error"]
    assert [a.tool for a in EVERY_KIND] == ["add", None, None, None, None, None]


@pytest.mark.parametrize(("stored", "expected"), [
    # what the scaffolds wrote before the record existed
    ('{"type": "tool", "tool": "calculator"}', StepAction("tool", calls=(ActionCall("calculator"),))),
    ('{"type": "tool", "tool": "add", "arguments": {"a": 1}}', StepAction("tool", calls=(ActionCall("add", {"a": 1}),))),
    ('{"type": "final", "answer": "5"}', StepAction.final_answer("5")),
    ('{"type": "plan", "plan": "1. add"}', StepAction.plan("1. add")),
    ('{"type": "note", "text": ""}', StepAction.note("")),
    ('{"type": "none"}', StepAction.empty_reply()),
    (None, None),
])
def test_actions_stored_before_the_record_are_read(stored: str | None, expected: StepAction | None) -> None:
    assert StepAction.from_json(stored) == expected


def test_an_unknown_stored_action_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="unknown type 'reflect'.*newer shardscope"):
        StepAction.from_json('{"type": "reflect"}')
    with pytest.raises(StoreError, match="not a JSON object"):
        StepAction.from_json('[1, 2]')


def test_a_step_action_is_frozen_and_checked() -> None:
    action = StepAction.tool_calls([ToolCall("c", "add", {"a": 1})])
    with pytest.raises(AttributeError):
        action.kind = "final"  # type: ignore[misc]
    with pytest.raises(TypeError):
        action.calls[0].arguments["a"] = 2  # type: ignore[index]
    with pytest.raises(ValueError, match="tool action has one or more calls"):
        StepAction("tool")
    with pytest.raises(ValueError, match="unknown step action kind"):
        StepAction("think")  # type: ignore[arg-type]


def test_alignment_costs_and_distance() -> None:
    a = [tool("search", q="x"), tool("read", doc=1), final("5")]
    b = [tool("search", q="y"), tool("read", doc=1), final("5")]
    ops = [col.op for col in T.align(a, b)]
    assert ops == ["similar", "match", "match"]
    assert T.distance(a, b) == 0.5 / 3
    assert T.distance(a, a) == 0.0 and T.distance([], []) == 0.0
    assert T.distance([final("1")], [tool("add")]) == 1.0
    c = [tool("search", q="x"), final("5")]
    assert [col.op for col in T.align(a, c)] == ["match", "delete", "match"]


def test_first_divergence_ties_do_not_move_it() -> None:
    # a repeats its first action: deleting either copy costs the same, but the sequences
    # only part after the shared first action.
    a = [tool("add", a=1), tool("add", a=1), final("2")]
    b = [tool("add", a=1), final("2")]
    div = T.first_divergence(a, b)
    assert (div.position, div.step_a, div.step_b) == (1, -1, -1)
    assert div.action_a.kind == "tool" and div.action_b.kind == "final" and div.rejoined
    assert [c.key for c in div.context] == [a[0].key]
    same = T.first_divergence(a, a)
    assert same.position is None and same.distance == 0.0


def test_random_planted_divergences_are_found() -> None:
    rng = np.random.default_rng(0)
    tools = ["search", "read", "sql", "calc"]
    found = 0
    for _ in range(300):
        length = int(rng.integers(2, 9))
        a = [tool(str(rng.choice(tools)), i, x=int(rng.integers(3))) for i in range(length)]
        k = int(rng.integers(0, length))
        b = a[:k] + [tool(str(rng.choice(tools)), k, x=7)] + [
            tool(str(rng.choice(tools)), k + 1 + i, x=int(rng.integers(3))) for i in range(int(rng.integers(0, 4)))]
        div = T.first_divergence(a, b)
        found += (div.position, div.step_a, div.step_b) == (k, k, k)
    assert found == 300


def test_trajectories_from_a_steps_frame_and_loops() -> None:
    steps = pd.DataFrame({
        "episode_id": ["e1", "e1", "e1", "e2"], "step_index": [2, 0, 1, 0],
        "action_json": ['{"type": "final", "answer": "5"}', '{"type": "tool", "tool": "add", "arguments": {"a": 1}}',
                        '{"type": "tool", "tool": "add", "arguments": {"a": 1}}', None],
        "protocol_error": [None, None, None, "empty reply: neither a tool call nor an answer"],
        "output": ["Final Answer: 5", "", "", ""],
    })
    paths = T.trajectories(steps)
    assert [a.kind for a in paths["e1"]] == ["tool", "tool", "final"]
    assert [a.step_index for a in paths["e1"]] == [0, 1, 2]
    assert paths["e2"][0].label == "protocol error: empty reply"
    assert T.repeated_runs(paths["e1"]) == 1 and T.repeated_runs(paths["e2"]) == 0


def test_protocol_errors_in_different_words_are_different_actions() -> None:
    """Issue 17: every react-text protocol error was one action, so two models writing
    completely different things looked 'identical'."""
    problem = "no 'Action:' or 'Final Answer:' line"
    steps = pd.DataFrame({
        "episode_id": ["smol", "smol", "qwen", "qwen", "again"],
        "step_index": [0, 1, 0, 1, 0],
        "action_json": ['{"type": "error"}'] * 5,
        "protocol_error": [problem] * 5,
        "output": ["The answer is 27.", "It is 27", "I will use sql first", "SELECT 1", "  The ANSWER is 27. "],
    })
    paths = T.trajectories(steps)
    div = T.first_divergence(paths["smol"], paths["qwen"])
    assert div.position == 0 and div.distance == T.SIMILAR_COST  # same kind, other words
    assert div.action_a is not None and "the answer is 27" in div.action_a.label
    # The same words (after normalizing whitespace and case) are the same action.
    assert paths["smol"][0].key == paths["again"][0].key
