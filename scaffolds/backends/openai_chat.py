"""``openai`` and ``openai-compatible`` backends: the official ``openai`` SDK, chat completions.

``openai-compatible`` is the same wire format at any base URL (vLLM, Ollama, the llama.cpp
server); only its provider name, key and capabilities come from the catalog. The SDK's own
retries are off (``max_retries=0``): :mod:`shardscope.scaffolds.backends.traced` is the one retry layer.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from shardscope.scaffolds.backends import openai_wire as wire
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
from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, StreamChunk, ToolSpec

NO_KEY = "no-key-required"  # local OpenAI-compatible servers accept any key


class OpenAIBackend(Backend):
    """Chat completions through ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        provider: str = "openai",
        capabilities: Capabilities = Capabilities(tools=True, streaming=True, logprobs=True),
        defaults: Mapping[str, Any] | None = None,
        key_required: bool = True,
    ) -> None:
        self._sdk = require("openai", "openai", f"the {provider} backend")
        self.model = model
        self.provider = provider
        self.capabilities = capabilities
        self.defaults = dict(defaults or {})
        self.base_url = base_url
        self.api_key_env = api_key_env
        self._api_key = os.environ.get(api_key_env) if api_key_env else None
        if not self._api_key:
            if key_required:
                raise AuthenticationError(
                    f"{provider}: no API key: set the environment variable {api_key_env} "
                    "(keys are read from the environment only)"
                )
            self._api_key = NO_KEY
        if base_url:
            parts = urlsplit(base_url)
            self.server_address = parts.hostname
            self.server_port = parts.port or (443 if parts.scheme == "https" else 80)
        else:
            self.server_address, self.server_port = "api.openai.com", 443
        self._clients: dict[int, Any] = {}
        protect_logs(self._api_key)

    def _client(self) -> Any:
        # An httpx client is bound to the event loop that opened its connections.
        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None:
            self._clients.clear()
            client = self._sdk.AsyncOpenAI(
                api_key=self._api_key, base_url=self.base_url, max_retries=0
            )
            self._clients[loop] = client
        return client

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> ModelOutput:
        config = self.with_defaults(config)
        body = wire.request_body(self.model, messages, tools, config)
        try:
            response = await self._client().chat.completions.create(
                **body, timeout=config.timeout_s
            )
        except Exception as exc:
            raise self._error(exc) from None
        return wire.parse_response(_as_dict(response, self.provider), body, self.provider)

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> AsyncIterator[StreamChunk | ModelOutput]:
        config = self.with_defaults(config)
        body = wire.request_body(self.model, messages, tools, config)
        body.update(stream=True, stream_options={"include_usage": True})
        assembler = wire.StreamAssembler(self.provider)
        try:
            chunks = await self._client().chat.completions.create(**body, timeout=config.timeout_s)
            async for chunk in chunks:
                for piece in assembler.add(_as_dict(chunk, self.provider)):
                    yield piece
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, streaming=assembler.chunks > 0) from None
        yield assembler.output(body)

    def _error(self, exc: Exception, *, streaming: bool = False) -> BackendError:
        """Our error for an SDK (or transport) exception, with the key scrubbed out."""
        sdk = self._sdk
        text = scrub(_message(exc), self._api_key)
        if isinstance(exc, sdk.APITimeoutError):
            return CallTimeoutError(f"{self.provider}: the request timed out ({text})")
        if isinstance(exc, sdk.APIStatusError):
            return error_for_status(
                self.provider,
                exc.status_code,
                text,
                headers=exc.response.headers,
                kind=error_kind(exc.body),
                hint=f"check {self.api_key_env}" if self.api_key_env else "",
            )
        if isinstance(exc, (sdk.APIResponseValidationError, json.JSONDecodeError)):
            return MalformedResponseError(f"{self.provider}: malformed response: {text}")
        cause = scrub(_message(exc.__cause__), self._api_key) if exc.__cause__ else text
        if streaming:
            return StreamInterruptedError(f"{self.provider}: the stream broke off: {cause}")
        if isinstance(exc, sdk.APIConnectionError):
            where = self.base_url or "api.openai.com"
            return BackendConnectionError(f"{self.provider}: cannot reach {where}: {cause}")
        return MalformedResponseError(f"{self.provider}: unexpected {type(exc).__name__}: {text}")

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except RuntimeError:  # its event loop is gone; nothing left to release
                pass


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
    return str(exc) or type(exc).__name__


def _as_dict(obj: Any, provider: str) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        raise MalformedResponseError(f"{provider}: the response is not JSON: {str(obj)[:200]}")
    return dump(exclude_none=False)
