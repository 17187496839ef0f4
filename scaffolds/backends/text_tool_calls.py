"""Tool calls that a model writes as text, turned into real :class:`ToolCall` objects.

Models without native tool calling (every GGUF run through llama.cpp) answer in the Hermes /
Qwen2.5 convention: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. As a
fallback, a reply that is nothing but one JSON object naming one of the offered tools counts
too. A block that cannot be parsed becomes a ToolCall with ``error`` set and ``raw`` kept:
it is reported, never dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from scaffolds.types import ToolCall

_BLOCK = re.compile(r"<tool_call>(.*?)(</tool_call>|\Z)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')
_DECODER = json.JSONDecoder()


def parse_text_tool_calls(
    text: str, tool_names: Collection[str], id_prefix: str = "call"
) -> tuple[str, tuple[ToolCall, ...]]:
    """``text`` without its tool-call blocks, and the calls they held (malformed ones too)."""
    calls: list[ToolCall] = []
    for match in _BLOCK.finditer(text):
        closed = bool(match.group(2))
        calls.extend(_calls_in_block(match.group(1), closed, f"{id_prefix}_{len(calls)}"))
    if calls:
        return _BLOCK.sub("", text).strip(), tuple(_renumber(calls, id_prefix))
    bare = _bare_call(text, tool_names, f"{id_prefix}_0")
    return ("", (bare,)) if bare else (text, ())


def _calls_in_block(block: str, closed: bool, call_id: str) -> list[ToolCall]:
    raw = _strip_fence(block.strip())
    objects, error = _json_objects(raw)
    if error is None and not objects:
        error = "empty <tool_call> block"
    if error is not None:
        if not closed:
            error += " (the <tool_call> block was never closed: output cut off?)"
        name = _NAME.search(raw)
        return [ToolCall(call_id, name.group(1) if name else "", {}, raw=raw, error=error)]
    return [_call_from_object(obj, raw, call_id) for obj in objects]


def _json_objects(raw: str) -> tuple[list[Any], str | None]:
    """Every JSON value in ``raw`` one after another (models sometimes put two in a block)."""
    values: list[Any] = []
    position = 0
    while position < len(raw):
        while position < len(raw) and raw[position].isspace():
            position += 1
        if position >= len(raw):
            break
        try:
            value, position = _DECODER.raw_decode(raw, position)
        except json.JSONDecodeError as exc:
            return values, f"tool call is not valid JSON: {exc.msg} at character {exc.pos}"
        values.append(value)
    return values, None


def _call_from_object(obj: Any, raw: str, call_id: str) -> ToolCall:
    if not isinstance(obj, dict):
        return ToolCall(call_id, "", {}, raw=raw, error="tool call must be a JSON object")
    name = obj.get("name")
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return ToolCall(call_id, str(name or ""), {}, raw=raw,
                            error=f"'arguments' is a string that is not JSON: {exc.msg}")
    if not isinstance(name, str) or not name:
        return ToolCall(call_id, "", {}, raw=raw, error="tool call has no string 'name'")
    if not isinstance(arguments, dict):
        return ToolCall(call_id, name, {}, raw=raw, error="'arguments' must be a JSON object")
    return ToolCall(call_id, name, arguments, raw=raw)


def _bare_call(text: str, tool_names: Collection[str], call_id: str) -> ToolCall | None:
    raw = _strip_fence(text.strip())
    if not raw.startswith("{") or not tool_names:
        return None
    objects, error = _json_objects(raw)
    if error or len(objects) != 1 or not isinstance(objects[0], dict):
        return None
    obj = objects[0]
    if obj.get("name") not in tool_names or not ({"arguments", "parameters"} & obj.keys()):
        return None
    return _call_from_object(obj, raw, call_id)


def _strip_fence(text: str) -> str:
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text


def _renumber(calls: list[ToolCall], id_prefix: str) -> list[ToolCall]:
    return [
        ToolCall(f"{id_prefix}_{i}", c.name, c.arguments, raw=c.raw, error=c.error)
        for i, c in enumerate(calls)
    ]
