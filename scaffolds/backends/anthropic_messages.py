"""``anthropic`` backend: the official ``anthropic`` SDK, Messages API (JSON and streaming).

System messages become the ``system`` parameter, tool results become ``tool_result`` blocks
in a user turn, and stop reasons are normalized to ``stop`` / ``length`` / ``tool_calls``
(the provider's own value stays in the raw response). The SDK's retries are off.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from shardscope.scaffolds.backends.base import Backend, Capabilities
from shardscope.scaffolds.backends.errors import (
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    CallTimeoutError,
    MalformedResponseError,
    StreamInterruptedError,
)
from shardscope.scaffolds.backends.log_redaction import protect_logs
from shardscope.scaffolds.backends.provider_errors import (
    error_for_status,
    error_kind,
    require,
    scrub,
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
    stop = message.get("stop_reason")
    return ModelOutput(
        text=text,
        tool_calls=calls,
        finish_reason=_FINISH.get(stop, stop),
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
        *,
        base_url: str | None = None,
        api_key_env: str = "ANTHROPIC_API_KEY",
        capabilities: Capabilities = Capabilities(tools=True, streaming=True, logprobs=False),
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self._sdk = require("anthropic", "anthropic", "the anthropic backend")
        self.model = model
        self.provider = "anthropic"
        self.capabilities = capabilities
        self.defaults = dict(defaults or {})
        self.base_url = base_url
        self.api_key_env = api_key_env
        self._api_key = os.environ.get(api_key_env)
        if not self._api_key:
            raise AuthenticationError(
                f"anthropic: no API key: set the environment variable {api_key_env} "
                "(keys are read from the environment only)"
            )
        parts = urlsplit(base_url or "https://api.anthropic.com")
        self.server_address = parts.hostname
        self.server_port = parts.port or (443 if parts.scheme == "https" else 80)
        self._clients: dict[int, Any] = {}
        protect_logs(self._api_key)

    def _client(self) -> Any:
        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None:
            self._clients.clear()
            client = self._sdk.AsyncAnthropic(
                api_key=self._api_key, base_url=self.base_url, max_retries=0
            )
            self._clients[loop] = client
        return client

    def _call(self, body: dict[str, Any], config: GenerationConfig, **extra: Any) -> Any:
        # This SDK version has no typed sampling parameters: they travel in the JSON body.
        sampling = {k: body[k] for k in ("temperature", "top_p") if k in body}
        typed = {k: v for k, v in body.items() if k not in sampling}
        return self._client().messages.create(
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
        return parse_message(_as_dict(message), body)

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
                text = assembler.add(_as_dict(event))
                if text:
                    yield StreamChunk(text)
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, streaming=assembler.events > 0) from None
        yield assembler.output({**body, "stream": True})

    def _error(self, exc: Exception, *, streaming: bool = False) -> BackendError:
        sdk = self._sdk
        text = scrub(_message(exc), self._api_key)
        if isinstance(exc, sdk.APITimeoutError):
            return CallTimeoutError(f"anthropic: the request timed out ({text})")
        if isinstance(exc, sdk.APIStatusError):
            return error_for_status(
                "anthropic",
                exc.status_code,
                text,
                headers=exc.response.headers,
                kind=error_kind(exc.body),
                hint=f"check {self.api_key_env}",
            )
        if isinstance(exc, (sdk.APIResponseValidationError, ValueError)):
            return MalformedResponseError(f"anthropic: malformed response: {text}")
        cause = scrub(_message(exc.__cause__), self._api_key) if exc.__cause__ else text
        if streaming:
            return StreamInterruptedError(f"anthropic: the stream broke off: {cause}")
        if isinstance(exc, sdk.APIConnectionError):
            return BackendConnectionError(
                f"anthropic: cannot reach {self.base_url or 'api.anthropic.com'}: {cause}"
            )
        return MalformedResponseError(f"anthropic: unexpected {type(exc).__name__}: {text}")

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(RuntimeError):
                await client.close()


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
    return str(exc) or type(exc).__name__


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        raise MalformedResponseError(f"anthropic: the response is not JSON: {str(obj)[:200]}")
    return dump()
