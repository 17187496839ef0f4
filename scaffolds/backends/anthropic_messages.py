"""``anthropic`` backend: the official ``anthropic`` SDK, Messages API (JSON and streaming).

System messages become the ``system`` parameter, tool results become ``tool_result`` blocks
in a user turn, and stop reasons are normalized to ``stop`` / ``length`` / ``tool_calls``
(the provider's own value stays in the raw response). The SDK's retries are off. The
kind's registry row is at the end of this module.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from shardscope.config.catalog import ModelEntry
from shardscope.scaffolds.backends import hosted
from shardscope.scaffolds.backends.base import Backend, BackendKind, Capabilities
from shardscope.scaffolds.backends.errors import (
    BackendError,
    MalformedResponseError,
    StreamInterruptedError,
)
from shardscope.scaffolds.backends.hosted import Endpoint, LoopClients, as_dict
from shardscope.scaffolds.backends.provider_errors import (
    require,
)
from shardscope.scaffolds.types import (
    GenerationConfig,
    Message,
    ModelOutput,
    StreamChunk,
    ToolCall,
    ToolSpec,
    Usage,
)

ANTHROPIC_URL = "https://api.anthropic.com"  # where the SDK goes without a base_url
DEFAULT_MAX_TOKENS = 1024  # the Messages API requires max_tokens
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def request_body(
    model: str, messages: Sequence[Message], tools: Sequence[ToolSpec], config: GenerationConfig
) -> dict[str, Any]:
    """The JSON body of one Messages call (never any credential)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": _turns(m for m in messages if m.role != "system"),
    }
    optional = {
        "system": system or None,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "stop_sequences": list(config.stop) or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
        ]
    return body


def _turns(messages: Any) -> list[dict[str, Any]]:
    """Messages as alternating user/assistant turns of content blocks."""
    turns: list[dict[str, Any]] = []
    for m in messages:
        role = "assistant" if m.role == "assistant" else "user"
        blocks = _blocks(m)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    for call in m.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return blocks


def parse_message(message: Mapping[str, Any], request: dict[str, Any]) -> ModelOutput:
    """A complete Messages response as our output."""
    content = message.get("content")
    if message.get("type") != "message" or not isinstance(content, list):
        raise MalformedResponseError(f"anthropic: not a Messages response: {str(message)[:200]}")
    text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
    calls = tuple(
        ToolCall(b.get("id") or f"call-{i}", b.get("name", ""), dict(b.get("input") or {}))
        for i, b in enumerate(content)
        if b.get("type") == "tool_use"
    )
    usage = message.get("usage") or {}
    stop: str | None = message.get("stop_reason")
    return ModelOutput(
        text=text,
        tool_calls=calls,
        finish_reason=None if stop is None else _FINISH.get(stop, stop),
        usage=Usage(usage.get("input_tokens"), usage.get("output_tokens")),
        response_model=message.get("model"),
        response_id=message.get("id"),
        raw_request=request,
        raw_response=dict(message),
    )


class MessageAssembler:
    """Folds Messages stream events into one message; no ``message_stop`` means it was cut."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, str] = {}
        self.events = 0
        self.stopped = False

    def add(self, event: Mapping[str, Any]) -> str | None:
        """Take one event; return the text it adds, if any."""
        self.events += 1
        kind = event.get("type")
        if kind == "message_start":
            self.message = dict(event.get("message") or {})
        elif kind == "content_block_start":
            self.blocks[event.get("index", 0)] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(event.get("index", 0), event.get("delta") or {})
        elif kind == "message_delta":
            self.message.update({k: v for k, v in (event.get("delta") or {}).items() if v is not None})
            delta_usage = {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            self.message["usage"] = {**(self.message.get("usage") or {}), **delta_usage}
        elif kind == "message_stop":
            self.stopped = True
        return None

    def _delta(self, index: int, delta: Mapping[str, Any]) -> str | None:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        if delta.get("type") == "text_delta":
            block["text"] = block.get("text", "") + delta.get("text", "")
            return delta.get("text") or None
        if delta.get("type") == "input_json_delta":
            self.partial_json[index] = self.partial_json.get(index, "") + delta.get("partial_json", "")
        return None

    def output(self, request: dict[str, Any]) -> ModelOutput:
        if not self.stopped:
            raise StreamInterruptedError(
                f"anthropic: the stream ended after {self.events} events without message_stop"
            )
        calls: list[ToolCall] = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if block.get("type") != "tool_use":
                continue
            raw = self.partial_json.get(index, "")
            try:
                block["input"] = json.loads(raw) if raw else dict(block.get("input") or {})
            except json.JSONDecodeError as exc:
                calls.append(ToolCall(block.get("id", ""), block.get("name", ""), {}, raw=raw,
                                      error=f"tool input is not valid JSON: {exc}"))
                block["input"] = {}
        message = {**self.message, "type": "message", "content": [self.blocks[i] for i in sorted(self.blocks)]}
        output = parse_message(message, request)
        bad = {c.id for c in calls}  # malformed calls replace the empty ones parse_message made
        return dataclasses.replace(
            output,
            tool_calls=tuple(c for c in output.tool_calls if c.id not in bad) + tuple(calls),
            raw_response={**message, "assembled_from_stream": True, "events": self.events},
        )


class AnthropicBackend(Backend):
    """Claude models through ``anthropic.AsyncAnthropic``."""

    def __init__(
        self,
        model: str,
        endpoint: Endpoint,
        *,
        capabilities: Capabilities = Capabilities(tools=True, streaming=True, logprobs=False),
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self._sdk = require("anthropic", "anthropic", "the anthropic backend")
        self.model = model
        self.provider = "anthropic"
        self.capabilities = capabilities
        self.defaults = dict(defaults or {})
        self.endpoint = endpoint
        self._api_key = endpoint.api_key()
        self.server_address, self.server_port = endpoint.server_address, endpoint.server_port
        self._clients = LoopClients(
            lambda: self._sdk.AsyncAnthropic(
                api_key=self._api_key, base_url=endpoint.base_url, max_retries=0
            )
        )

    def _call(self, body: dict[str, Any], config: GenerationConfig, **extra: Any) -> Any:
        # This SDK version has no typed sampling parameters: they travel in the JSON body.
        sampling = {k: body[k] for k in ("temperature", "top_p") if k in body}
        typed = {k: v for k, v in body.items() if k not in sampling}
        return self._clients.get().messages.create(
            **typed, **extra, extra_body=sampling or None, timeout=config.timeout_s
        )

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> ModelOutput:
        config = self.with_defaults(config)
        body = request_body(self.model, messages, tools, config)
        try:
            message = await self._call(body, config)
        except Exception as exc:
            raise self._error(exc) from None
        return parse_message(as_dict(message, "anthropic"), body)

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> AsyncIterator[StreamChunk | ModelOutput]:
        config = self.with_defaults(config)
        body = request_body(self.model, messages, tools, config)
        assembler = MessageAssembler()
        try:
            events = await self._call(body, config, stream=True)
            async for event in events:
                text = assembler.add(as_dict(event, "anthropic"))
                if text:
                    yield StreamChunk(text)
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, streaming=assembler.events > 0) from None
        yield assembler.output({**body, "stream": True})

    def _error(self, exc: Exception, *, streaming: bool = False) -> BackendError:
        """Our error for an SDK (or transport) exception, with the key scrubbed out."""
        return hosted.sdk_error(
            exc,
            self._sdk,
            name="anthropic",
            endpoint=self.endpoint,
            api_key=self._api_key,
            streaming=streaming,
            malformed=(ValueError,),
        )

    async def aclose(self) -> None:
        await self._clients.aclose()


def _key_env(entry: ModelEntry) -> str | None:
    return entry.api_key_env or "ANTHROPIC_API_KEY"


def _build(entry: ModelEntry, logprobs: bool) -> Backend:
    return AnthropicBackend(
        entry.model,
        Endpoint("anthropic", entry.base_url, _key_env(entry), default_url=ANTHROPIC_URL),
        capabilities=Capabilities.of(entry, tools=True, streaming=True, logprobs=False),
        defaults=entry.params,
    )


ANTHROPIC = BackendKind(
    name="anthropic",
    build=_build,
    default_provider=lambda model: "anthropic",
    availability=lambda entry: hosted.availability(_key_env(entry), entry.base_url),
    sdk="anthropic",
    extra="anthropic",
    key_env=_key_env,
)
