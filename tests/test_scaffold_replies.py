"""Every scaffold's parse of recorded model replies (tests/data/replies/<scaffold>.json).

Each entry is a reply as a model wrote it and the parse the scaffold must make of it, through
the same functions the scaffold's loop calls. Add a reply here whenever a model's output was
misread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shardscope.scaffolds.agents.plan_execute import _FINAL, PlanAndExecute, _plan_items
from shardscope.scaffolds.agents.protocol import parse_tool_call_blocks, strip_final_answer
from shardscope.scaffolds.agents.react_text import TextReAct
from shardscope.scaffolds.agents.react_tools import ToolCallingReAct
from shardscope.scaffolds.types import ModelOutput, ToolCall

REPLIES = Path(__file__).parent / "data" / "replies"


def _corpus(scaffold: str) -> list[dict[str, Any]]:
    data = json.loads((REPLIES / f"{scaffold}.json").read_text(encoding="utf-8"))
    assert data["scaffold"] == scaffold
    return list(data["replies"])


def _ids(entries: list[dict[str, Any]]) -> list[str]:
    return [f"{i}-{e['model'].split('-')[0]}-{e.get('task', e.get('phase'))}" for i, e in enumerate(entries)]


def _check_calls(calls: list[ToolCall], expected: list[dict[str, Any]]) -> None:
    assert [c.name for c in calls] == [e["tool"] for e in expected]
    for call, want in zip(calls, expected, strict=True):
        if "error" in want:
            assert call.error is not None and want["error"] in call.error
        else:
            assert call.error is None and dict(call.arguments) == want["arguments"]


REACT_TEXT = _corpus("react-text")


@pytest.mark.parametrize("entry", REACT_TEXT, ids=_ids(REACT_TEXT))
def test_react_text_parses_recorded_replies(entry: dict[str, Any]) -> None:
    parsed = TextReAct().parse_reply(entry["reply"], "call-0")
    want = entry["expect"]
    if want["kind"] == "final":
        assert (parsed.final_answer, parsed.call) == (want["answer"], None)
    elif want["kind"] == "problem":
        assert (parsed.call, parsed.final_answer, parsed.problem) == (None, None, want["problem"])
    else:
        assert parsed.call is not None and parsed.final_answer is None
        _check_calls([parsed.call], [want])


def test_react_text_reads_an_action_right_after_its_own_cue() -> None:
    """Issue 17: the scaffold writes 'Thought:' and Qwen's reply starts with 'Action:'."""
    parsed = TextReAct().parse_reply('Action: read_doc\nAction Input: {"name": "a"}', "c")
    assert parsed.problem is None and parsed.call is not None
    assert (parsed.call.name, dict(parsed.call.arguments)) == ("read_doc", {"name": "a"})


def test_react_text_reads_several_actions_as_parallel_calls() -> None:
    """Each Action / Action Input pair before the Observation is one call, in order; a bad
    pair is a malformed call of its own, and the good ones keep their arguments."""
    reply = ('I need both.\nAction: get_weather\nAction Input: {"city": "Boston"}\n'
             'Action: get_weather\nAction Input: {"city": "Paris"}\n'
             "Action: get_time\nAction Input: Paris\nObservation: (not written by the model)")
    parsed = TextReAct().parse_reply(reply, "c")
    assert [c.id for c in parsed.calls] == ["c", "c-2", "c-3"]
    _check_calls(list(parsed.calls), [
        {"tool": "get_weather", "arguments": {"city": "Boston"}},
        {"tool": "get_weather", "arguments": {"city": "Paris"}},
        {"tool": "get_time", "error": "not a JSON object"}])
    assert parsed.call == parsed.calls[0] and parsed.final_answer is None


def test_react_text_reads_several_inputs_under_one_action() -> None:
    """Qwen2.5-Coder on BFCL parallel_7 wrote one Action with an Action Input per call."""
    reply = ('Thought: I need the factorials.\nAction: math_factorial\n'
             'Action Input: {"number": 5}\nAction Input: {"number": 15}')
    parsed = TextReAct().parse_reply(reply, "c")
    assert [c.id for c in parsed.calls] == ["c", "c-2"]
    _check_calls(list(parsed.calls), [{"tool": "math_factorial", "arguments": {"number": 5}},
                                      {"tool": "math_factorial", "arguments": {"number": 15}}])


REACT_TOOLS = _corpus("react-tools")


@pytest.mark.parametrize("entry", REACT_TOOLS, ids=_ids(REACT_TOOLS))
def test_react_tools_parses_recorded_replies(entry: dict[str, Any]) -> None:
    calls = ToolCallingReAct().parse_calls(ModelOutput(entry["reply"]), False, entry["tools"], "call-0")
    want = entry["expect"]
    if want["kind"] == "tool":
        _check_calls(calls, want["calls"])
        return
    assert calls == []
    answer = strip_final_answer(entry["reply"])
    assert answer == (want["answer"] if want["kind"] == "final" else "")


PLAN = _corpus("plan-execute")


@pytest.mark.parametrize("entry", PLAN, ids=_ids(PLAN))
def test_plan_execute_parses_recorded_replies(entry: dict[str, Any]) -> None:
    reply, want = entry["reply"], entry["expect"]
    if entry["phase"] == "plan":
        assert _plan_items(reply, PlanAndExecute().params.max_plan_items) == want["items"]
    elif entry["phase"] == "act":
        calls = parse_tool_call_blocks(reply, entry["tools"], "call-0")
        if want["kind"] == "tool":
            _check_calls(calls, want["calls"])
        else:
            assert calls == [] and reply.strip() == want["text"]
    else:
        final = _FINAL.search(reply) is not None
        assert final == (want["kind"] == "final")
        if final:
            assert strip_final_answer(reply) == want["answer"]
