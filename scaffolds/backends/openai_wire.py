"""The OpenAI chat-completions wire format, as plain dicts: requests out, responses and
stream chunks in. Shared by the ``openai``, ``openai-compatible`` and ``litellm`` backends
(LiteLLM speaks this shape whatever the provider behind it); no SDK is imported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shardscope.scaffolds.backends.errors import MalformedResponseError, StreamInterruptedError
from shardscope.scaffolds.types import (
    GenerationConfig,
    Message,
    ModelOutput,
    StreamChunk,
    TokenLogprob,
    ToolCall,
    ToolSpec,
    Usage,
)


def request_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our messages as chat-completions messages."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
        elif m.role == "assistant" and m.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": m.content or None,
                    "tool_calls": [_call_out(c) for c in m.tool_calls],
                }
            )
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _call_out(call: ToolCall) -> dict[str, Any]:
    # A malformed call goes back exactly as the model wrote it, so the model can see its error.
    arguments = call.raw if call.error and call.raw is not None else json.dumps(call.arguments)
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def request_body(
    model: str, messages: Sequence[Message], tools: Sequence[ToolSpec], config: GenerationConfig
) -> dict[str, Any]:
    """The keyword arguments of one chat-completions call (never any credential)."""
    body: dict[str, Any] = {"model": model, "messages": request_messages(messages)}
    optional = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_tokens": config.max_tokens,
        "seed": config.seed,
        "stop": list(config.stop) or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if tools:
        body["tools"] = [t.as_json_schema_tool() for t in tools]
    if config.logprobs:
        body["logprobs"] = True
        if config.top_logprobs:
            body["top_logprobs"] = config.top_logprobs
    return body


def parse_tool_call(index: int, raw: Mapping[str, Any]) -> ToolCall:
    """One tool call of a response; bad JSON arguments are kept and reported, not dropped."""
    function = raw.get("function") or {}
    name = function.get("name") or ""
    arguments = function.get("arguments")
    call_id = raw.get("id") or f"call-{index}"
    if isinstance(arguments, Mapping):
        return ToolCall(call_id, name, dict(arguments))
    text = arguments or "{}"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        return ToolCall(call_id, name, {}, raw=text, error=f"arguments are not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        return ToolCall(call_id, name, {}, raw=text, error="arguments must be a JSON object")
    return ToolCall(call_id, name, parsed, raw=text)


def _logprob_chunks(logprobs: Mapping[str, Any] | None) -> tuple[StreamChunk, ...]:
    if not logprobs:
        return ()
    return tuple(
        StreamChunk(
            entry.get("token", ""),
            logprob=entry.get("logprob"),
            top_logprobs=tuple(
                TokenLogprob(t.get("token", ""), t.get("logprob"))
                for t in entry.get("top_logprobs") or ()
            ),
        )
        for entry in logprobs.get("content") or ()
    )


def _usage(raw: Mapping[str, Any] | None) -> Usage:
    raw = raw or {}
    return Usage(raw.get("prompt_tokens"), raw.get("completion_tokens"))


def parse_response(
    response: Mapping[str, Any], request: dict[str, Any], provider: str
) -> ModelOutput:
    """A complete (non-streamed) chat-completions response as our output."""
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise MalformedResponseError(f"{provider}: the response has no choices: {str(response)[:200]}")
    choice = choices[0]
    message = choice.get("message") or {}
    calls = tuple(parse_tool_call(i, c) for i, c in enumerate(message.get("tool_calls") or ()))
    return ModelOutput(
        text=message.get("content") or "",
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=_usage(response.get("usage")),
        response_model=response.get("model"),
        response_id=response.get("id"),
        tokens=_logprob_chunks(choice.get("logprobs")),
        raw_request=request,
        raw_response=dict(response),
    )


@dataclass
class StreamAssembler:
    """Folds chat-completions stream chunks into text, tool calls, usage and a final output."""

    provider: str
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    response_id: str | None = None
    tokens: list[StreamChunk] = field(default_factory=list)
    chunks: int = 0

    def add(self, chunk: Mapping[str, Any]) -> list[StreamChunk]:
        """Take one chunk; return the text pieces to stream on."""
        self.chunks += 1
        self.model = chunk.get("model") or self.model
        self.response_id = chunk.get("id") or self.response_id
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        pieces: list[StreamChunk] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.text.append(content)
                pieces.extend(_logprob_chunks(choice.get("logprobs")) or (StreamChunk(content),))
            for part in delta.get("tool_calls") or ():
                self._add_call_part(part)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        self.tokens.extend(pieces)
        return pieces

    def _add_call_part(self, part: Mapping[str, Any]) -> None:
        slot = self.calls.setdefault(part.get("index", len(self.calls)), {"function": {}})
        if part.get("id"):
            slot["id"] = part["id"]
        function = part.get("function") or {}
        if function.get("name"):
            slot["function"]["name"] = slot["function"].get("name", "") + function["name"]
        if function.get("arguments"):
            slot["function"]["arguments"] = (
                slot["function"].get("arguments", "") + function["arguments"]
            )

    def output(self, request: dict[str, Any]) -> ModelOutput:
        """The final output; a stream that never said why it ended was cut."""
        if self.finish_reason is None:
            raise StreamInterruptedError(
                f"{self.provider}: the stream ended after {self.chunks} chunks without a "
                "finish reason (connection cut or server stopped mid-answer)"
            )
        text = "".join(self.text)
        raw_calls = [self.calls[i] for i in sorted(self.calls)]
        return ModelOutput(
            text=text,
            tool_calls=tuple(parse_tool_call(i, c) for i, c in enumerate(raw_calls)),
            finish_reason=self.finish_reason,
            usage=_usage(self.usage),
            response_model=self.model,
            response_id=self.response_id,
            tokens=tuple(self.tokens),
            raw_request=request,
            raw_response={
                "assembled_from_stream": True,
                "chunks": self.chunks,
                "id": self.response_id,
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": text,
                            "tool_calls": raw_calls or None,
                        },
                        "finish_reason": self.finish_reason,
                    }
                ],
                "usage": dict(self.usage) if self.usage else None,
            },
        )
