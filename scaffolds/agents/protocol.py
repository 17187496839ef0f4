"""Parsing what models write when a scaffold asks them to act in text.

Two formats: the ReAct text protocol (``Action:`` / ``Action Input:`` / ``Final Answer:``)
and JSON tool calls in ``<tool_call>...</tool_call>`` blocks (what Qwen-style chat templates
teach models; parsed by :mod:`shardscope.scaffolds.backends.text_tool_calls`). A call that
cannot be parsed is returned as a ToolCall with ``error`` set, never dropped: the scaffold
records it as a protocol error.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from shardscope.scaffolds.backends.text_tool_calls import parse_text_tool_calls
from shardscope.scaffolds.types import ToolCall

_FINAL = re.compile(r"final\s*answer\s*[:：]\s*", re.IGNORECASE)
# A line may open with markdown emphasis ("**Action:**") and, where the scaffold wrote the
# "Thought:" cue itself, the model's reply may start its first line with the action at once:
# "Thought: Action: read_doc". The name ends at the line's end or at an "Action Input:" on
# the same line.
_LEAD = r"^[ \t>#*_`]*(?:thought[ \t*_]*[:：][ \t*_]*)?"
_ACTION = re.compile(
    _LEAD + r"action[ \t*_]*[:：][ \t*_]*(?P<name>.*?)[ \t]*(?=action[ \t*_]*input[ \t*_]*[:：]|$)",
    re.IGNORECASE | re.MULTILINE,
)
_ACTION_INPUT = re.compile(r"action[ \t*_]*input[ \t*_]*[:：][ \t*_]*", re.IGNORECASE)
_OBSERVATION = re.compile(r"^\s*observation\s*[:：]", re.IGNORECASE | re.MULTILINE)
_NAME_CLEAN = re.compile(r"[`*\"'\[\]()]")


@dataclass(frozen=True)
class TextAction:
    """A parsed ReAct step: tool calls (several ``Action:`` / ``Action Input:`` pairs before
    the ``Observation:`` are parallel calls), a final answer, or neither (``problem`` says why)."""

    calls: tuple[ToolCall, ...] = ()
    final_answer: str | None = None
    problem: str | None = None

    @property
    def call(self) -> ToolCall | None:
        """The first call, if any."""
        return self.calls[0] if self.calls else None


def parse_react(text: str, call_id: str) -> TextAction:
    """Parse one ReAct-format model output (whichever of Action / Final Answer comes first).

    Before the first ``Observation:``, every ``Action Input:`` line is one call of the tool
    named by the ``Action:`` line above it, so several pairs (or several inputs under one
    action) are parallel calls; they get ids ``call_id``, ``call_id-2``, ..."""
    final = _FINAL.search(text)
    action = _ACTION.search(text)
    if final and (not action or final.start() < action.start()):
        answer = text[final.end():].strip()
        answer = _OBSERVATION.split(answer)[0].strip()
        if not answer:
            return TextAction(problem="'Final Answer:' with nothing after it")
        return TextAction(final_answer=answer)
    if not action:
        return TextAction(problem="no 'Action:' or 'Final Answer:' line")
    body = _OBSERVATION.split(text[action.start():])[0]
    actions = list(_ACTION.finditer(body))
    calls: list[ToolCall] = []
    for i, found in enumerate(actions):
        end = actions[i + 1].start() if i + 1 < len(actions) else len(body)
        calls.extend(_calls_of(found, body[found.end():end], text))
    ids = [call_id, *(f"{call_id}-{n}" for n in range(2, len(calls) + 1))]
    return TextAction(calls=tuple(dataclasses.replace(c, id=i) for c, i in zip(calls, ids, strict=True)))


def _calls_of(action: re.Match[str], rest: str, text: str) -> list[ToolCall]:
    """The calls of one ``Action:`` line: one per ``Action Input:`` line under it."""
    name = _NAME_CLEAN.sub("", action.group("name")).strip().split(" ")[0] if action.group("name") else ""
    inputs = list(_ACTION_INPUT.finditer(rest))
    if not name:
        return [ToolCall("", "", {}, raw=text.strip(), error="'Action:' names no tool")]
    if not inputs:
        return [ToolCall("", name, {}, raw=text.strip(), error="no 'Action Input:' line")]
    calls = []
    for i, found in enumerate(inputs):
        raw = rest[found.end():inputs[i + 1].start() if i + 1 < len(inputs) else len(rest)].strip()
        arguments, error = _json_object(raw)
        calls.append(ToolCall("", name, arguments or {}, raw=raw, error=error))
    return calls


def parse_tool_call_blocks(text: str, tool_names: Collection[str], id_prefix: str) -> list[ToolCall]:
    """Tool calls written as ``<tool_call>{json}</tool_call>`` blocks (or one bare JSON call):
    the same parser the local backend uses, so both paths judge a model's text alike."""
    return list(parse_text_tool_calls(text, tool_names, id_prefix)[1])


def strip_final_answer(text: str) -> str:
    """The answer in a model's reply: after 'Final Answer:' if present, else the whole text."""
    found = _FINAL.search(text)
    return (text[found.end():] if found else text).strip()


def _json_object(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    text = raw.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[text.find("\n") + 1:] if "\n" in text else text
        text = text.rstrip("`").strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None, f"arguments are not a JSON object: {raw[:120]!r}"
    try:
        value = json.loads(text[start:end + 1])
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON ({exc.msg} at column {exc.colno}): {raw[:120]!r}"
    if not isinstance(value, dict):
        return None, "arguments must be a JSON object"
    return value, None
