"""Tool calls that a model writes as text, turned into real :class:`ToolCall` objects.

Models without native tool calling (every GGUF run through llama.cpp) answer in the Hermes /
Qwen2.5 convention: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. As a
fallback (Qwen2.5-Coder-0.5B mostly writes the JSON bare, often in a ```json fence), JSON
objects with a ``name`` and ``arguments`` count too, wherever they are, when tools are offered
(a name that is not an offered tool becomes the scaffold's "unknown tool" protocol error). A
block that cannot be parsed becomes a ToolCall with ``error`` set and ``raw`` kept: it is
reported, never dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from shardscope.scaffolds.types import ToolCall

_BLOCK = re.compile(r"<tool_call>(.*?)(</tool_call>|\Z)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
_NAME = re.compile(r'\s*"name"\s*:\s*"([^"]+)"')
_EMPTY_FENCE = re.compile(r"```(?:json)?\s*```")
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
    rest, bare = _bare_calls(text, tool_names, id_prefix)
    return (rest, tuple(bare)) if bare else (text, ())


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


def _bare_calls(text: str, tool_names: Collection[str], id_prefix: str) -> tuple[str, list[ToolCall]]:
    """JSON objects naming an offered tool, anywhere in the text (small models often drop the
    tags, or fence the JSON). One that names a tool but does not parse is reported."""
    calls: list[ToolCall] = []
    spans: list[tuple[int, int]] = []
    position = 0
    while tool_names and (start := text.find("{", position)) >= 0:
        try:
            obj, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            named = _NAME.match(text, start + 1)  # {"name": "<tool>", ... that does not parse
            if named and named.group(1) in tool_names:
                end = text.find("```", start)
                end = len(text) if end < 0 else end
                calls.append(ToolCall(f"{id_prefix}_{len(calls)}", named.group(1), {},
                                      raw=text[start:end].strip(),
                                      error=f"tool call is not valid JSON: {exc.msg}"))
                spans.append((start, end))
                break  # the rest of the text is part of the broken call
            position = start + 1
            continue
        if _looks_like_call(obj):
            calls.append(_call_from_object(obj, text[start:end], f"{id_prefix}_{len(calls)}"))
            spans.append((start, end))
        position = end
    if not calls:
        return text, []
    rest, cursor = [], 0
    for start, end in spans:
        rest.append(text[cursor:start])
        cursor = end
    rest.append(text[cursor:])
    return _EMPTY_FENCE.sub("", "".join(rest)).strip(), calls


def _looks_like_call(obj: Any) -> bool:
    """A JSON object with a string ``name`` and an ``arguments`` (or ``parameters``) object is
    an attempt at a tool call even when the name is not an offered tool: the scaffold then
    answers "unknown tool" (a recorded protocol error the model can recover from) instead of
    taking the JSON for a final answer."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
        return False
    arguments = obj.get("arguments", obj.get("parameters"))
    return isinstance(arguments, dict | str)


def _strip_fence(text: str) -> str:
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text


def _renumber(calls: list[ToolCall], id_prefix: str) -> list[ToolCall]:
    return [
        ToolCall(f"{id_prefix}_{i}", c.name, c.arguments, raw=c.raw, error=c.error)
        for i, c in enumerate(calls)
    ]
