"""An episode's conversation step by step, as the Trace explorer shows it: the GenAI messages
each LLM call recorded (tracer.encoding writes them) parsed back into plain messages, with each
step's action, protocol error, tool calls and failed attempts beside them. Pure functions over
an :class:`~shardscope.tracer.queries.trace.EpisodeTrace`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shardscope.tracer.queries.trace import EpisodeTrace


@dataclass(frozen=True)
class ChatMessage:
    """One message as the model saw it (GenAI ``parts`` flattened for display)."""

    role: str
    text: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()  # {id, name, arguments}
    tool_results: tuple[dict[str, Any], ...] = ()  # {id, response}


def parse_messages(value: Any) -> list[ChatMessage]:
    """GenAI messages (JSON text or list) as ChatMessages; plain text is one user message."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [ChatMessage("user", value)]
    if isinstance(value, str):  # a JSON string: a text transcript (text protocols)
        return [ChatMessage("user", value)]
    if isinstance(value, dict):
        value = [value]
    return [_message(m) for m in value if isinstance(m, dict)]


def _message(raw: dict[str, Any]) -> ChatMessage:
    texts, calls, results = [], [], []
    for part in raw.get("parts") or []:
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call":
            calls.append({"id": part.get("id"), "name": part.get("name"),
                          "arguments": part.get("arguments")})
        elif kind == "tool_call_response":
            results.append({"id": part.get("id"), "response": part.get("response")})
        else:
            texts.append(json.dumps(part, ensure_ascii=False))
    if "content" in raw and not texts:  # the shape with a plain content string
        texts.append(str(raw["content"]))
    return ChatMessage(str(raw.get("role", "?")), "".join(texts), tuple(calls), tuple(results))


@dataclass(frozen=True)
class StepView:
    """One loop iteration as the model lived it: what it was given, what it said, what ran."""

    index: int
    fed_in: list[ChatMessage]
    output: list[ChatMessage]
    action: dict[str, Any] | None
    protocol_error: str | None
    llm_calls: list[dict[str, Any]] = field(default_factory=list)  # rows of trace.llm_calls
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # rows of trace.tool_calls
    attempts: list[dict[str, Any]] = field(default_factory=list)  # failed attempts


def conversation(trace: EpisodeTrace) -> list[StepView]:
    """The episode step by step: input fed in, the model's output, tool calls and results."""
    def by_step(frame: pd.DataFrame) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for row in frame.to_dict("records"):
            out.setdefault(_int(row.get("step_index")), []).append(row)
        return out

    llm, tools, attempts = by_step(trace.llm_calls), by_step(trace.tool_calls), by_step(trace.attempts)
    views = []
    for step in trace.steps.to_dict("records"):
        index = _int(step["step_index"])
        calls = llm.get(index, [])
        output = [m for c in calls for m in parse_messages(c.get("output_messages"))]
        if not output and isinstance(step.get("output"), str):
            output = [ChatMessage("assistant", step["output"])]
        action = json.loads(step["action"]) if isinstance(step.get("action"), str) else None
        error = step.get("protocol_error")
        views.append(StepView(index, parse_messages(step.get("input")), output, action,
                              error if isinstance(error, str) else None, calls,
                              tools.get(index, []), attempts.get(index, [])))
    return views


def _int(value: Any) -> int:
    return -1 if value is None or pd.isna(value) else int(value)
