"""Actions, their normalization, alignment and first divergence (unit level)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shardscope.analysis import trajectory as T


def tool(name: str, step: int = -1, **args: object) -> T.Action:
    return T.action_of({"type": "tool", "tool": name, "arguments": args}, step_index=step)


def final(answer: str, step: int = -1) -> T.Action:
    return T.action_of({"type": "final", "answer": answer}, step_index=step)


def test_arguments_and_answers_are_normalized() -> None:
    assert tool("calc", expression=" 2 *  3 ").key == tool("calc", expression="2 * 3").key
    assert tool("add", a=2.0, b=3).key == tool("add", b=3, a=2).key
    assert tool("add", a=2.5).key != tool("add", a=2).key
    assert final("Twelve.").key == final("  twelve ").key
    assert T.action_of(None, "unknown tool 'foo'; tools: add").label == "protocol error: unknown tool 'foo'"
    assert T.action_of({"type": "none"}).kind == "none"


def test_several_calls_in_one_step_are_one_action() -> None:
    action = T.action_of({"type": "tool", "tool": "add", "arguments": {"a": 1},
                          "calls": [{"tool": "add", "arguments": {"a": 1}},
                                    {"tool": "sql", "arguments": {"query": "SELECT 1"}}]})
    assert action.tool == "add+sql" and '"query":"select 1"' in action.detail


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
