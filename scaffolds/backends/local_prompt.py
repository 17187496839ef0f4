"""Prompts for GGUF models: the chat template embedded in the file, tools, base models.

What llama-cpp-python 0.3.36 does on its own: it reads ``tokenizer.chat_template`` from the
GGUF and renders it with Jinja (SmolLM2 and Qwen2.5 both get ``chat_template.default``); a
file without one (Gemma-3-270M base) silently falls back to the *llama-2* ``[INST]`` format,
which is wrong for a base model. So we render prompts ourselves with the same Jinja renderer
(the exact prompt goes into the raw request) and give base models a plain transcript.

Tools: a template that knows ``tools`` (Qwen2.5) renders them itself, in its ``<tools>``
block, and renders assistant tool calls and ``tool`` results the way the model was trained.
For a template that does not (SmolLM2), the same Hermes-style block is appended to the
system prompt, calls are written back as ``<tool_call>`` text and results as
``<tool_response>`` user turns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from shardscope.scaffolds.backends.base import render_transcript
from shardscope.scaffolds.types import Message, ToolCall, ToolSpec

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_INSTRUCTION = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def tools_block(tools: Sequence[ToolSpec]) -> str:
    """The Hermes / Qwen2.5 tool listing, for templates that cannot render tools."""
    listing = "".join("\n" + json.dumps(t.as_json_schema_tool(), ensure_ascii=False) for t in tools)
    return TOOLS_PREAMBLE + listing + TOOLS_INSTRUCTION


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    stop: tuple[str, ...]  # the template's end-of-turn text, besides the caller's stops
    add_bos: bool  # False when the template already wrote the BOS token
    rendering: str  # chat_template | transcript


class PromptFormat:
    """How one GGUF wants its prompt: its chat template, or a transcript for a base model."""

    def __init__(self, template: str | None, bos_token: str, eos_token: str) -> None:
        self.template = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.native_tools = bool(template) and "tools" in (template or "")
        self._formatter = None
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=eos_token, bos_token=bos_token
            )

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec], chat: bool) -> RenderedPrompt:
        if not chat or self._formatter is None:
            return RenderedPrompt(render_transcript(messages), (), True, "transcript")
        if self.native_tools:
            dicts = [_native(m) for m in messages]
            kwargs: dict[str, Any] = {"tools": [t.as_json_schema_tool() for t in tools] or None}
        else:
            dicts, kwargs = _as_text_protocol(messages, tools), {}
        result = self._formatter(messages=cast(Any, dicts), **kwargs)  # llama_cpp's TypedDicts
        stops = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        text = result.prompt
        add_bos = not (self.bos_token and text.startswith(self.bos_token))
        return RenderedPrompt(text, tuple(s for s in stops if s), add_bos, "chat_template")


def _native(m: Message) -> dict[str, Any]:
    """A message for a template that renders tool calls and tool results itself."""
    if m.role == "tool":
        return {"role": "tool", "content": m.content, "name": m.name, "tool_call_id": m.tool_call_id}
    message: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _arguments(c)}}
            for c in m.tool_calls
        ]
    return message


def _arguments(call: ToolCall) -> Any:
    # A malformed call is shown back as the model wrote it (a string), so it can see the error.
    return call.raw if call.error and call.raw is not None else call.arguments


def _as_text_protocol(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Messages for a template with no tool support: tools in the system prompt, calls as text."""
    out: list[dict[str, Any]] = []
    if tools:
        system = next((m.content for m in messages if m.role == "system"), "")
        block = tools_block(tools)
        out.append({"role": "system", "content": f"{system}\n\n{block}" if system else block})
    for m in messages:
        if m.role == "system" and tools:
            continue
        if m.role == "tool":
            response = f"<tool_response>\n{m.content}\n</tool_response>"
            if out and out[-1].get("_tool_results"):
                out[-1]["content"] += "\n" + response
            else:
                out.append({"role": "user", "content": response, "_tool_results": True})
            continue
        content = m.content
        for call in m.tool_calls:
            arguments = _arguments(call)
            payload = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
            content += f'\n<tool_call>\n{{"name": "{call.name}", "arguments": {payload}}}\n</tool_call>'
        out.append({"role": m.role, "content": content.strip()})
    for message in out:
        message.pop("_tool_results", None)
    return out
