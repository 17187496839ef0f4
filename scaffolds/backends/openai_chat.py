"""``openai`` and ``openai-compatible`` backends: the official ``openai`` SDK, chat completions.

``openai-compatible`` is the same wire format at any base URL (vLLM, Ollama, the llama.cpp
server); only its provider name, key and capabilities come from the catalog. The SDK's own
retries are off (``max_retries=0``): :mod:`shardscope.scaffolds.backends.traced` is the one retry layer.
Both kinds' registry rows are at the end of this module.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from shardscope.config.catalog import ModelEntry
from shardscope.scaffolds.backends import hosted
from shardscope.scaffolds.backends import openai_wire as wire
from shardscope.scaffolds.backends.base import Backend, BackendKind, Capabilities
from shardscope.scaffolds.backends.errors import (
    BackendError,
)
from shardscope.scaffolds.backends.hosted import NO_KEY, Endpoint, LoopClients, as_dict
from shardscope.scaffolds.backends.provider_errors import (
    require,
)
from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, StreamChunk, ToolSpec
from shardscope.tracer import attributes as A

OPENAI_URL = "https://api.openai.com"  # where the SDK goes without a base_url


class OpenAIBackend(Backend):
    """Chat completions through ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        model: str,
        endpoint: Endpoint,
        *,
        capabilities: Capabilities = Capabilities(tools=True, streaming=True, logprobs=True),
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self._sdk = require("openai", "openai", f"the {endpoint.name} backend")
        self.model = model
        self.provider = endpoint.name  # the catalog's provider: openai, vllm, ollama, ...
        self.capabilities = capabilities
        self.defaults = dict(defaults or {})
        self.endpoint = endpoint
        self._api_key = endpoint.api_key()
        self.server_address, self.server_port = endpoint.server_address, endpoint.server_port
        self._clients = LoopClients(
            lambda: self._sdk.AsyncOpenAI(
                api_key=self._api_key, base_url=endpoint.base_url, max_retries=0
            )
        )

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> ModelOutput:
        config = self.with_defaults(config)
        body = wire.request_body(self.model, messages, tools, config)
        try:
            response = await self._clients.get().chat.completions.create(
                **body, timeout=config.timeout_s
            )
        except Exception as exc:
            raise self._error(exc) from None
        return wire.parse_response(as_dict(response, self.provider), body, self.provider)

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
            chunks = await self._clients.get().chat.completions.create(**body, timeout=config.timeout_s)
            async for chunk in chunks:
                for piece in assembler.add(as_dict(chunk, self.provider)):
                    yield piece
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, streaming=assembler.chunks > 0) from None
        yield assembler.output(body)

    def _error(self, exc: Exception, *, streaming: bool = False) -> BackendError:
        """Our error for an SDK (or transport) exception, with the key scrubbed out."""
        return hosted.sdk_error(
            exc,
            self._sdk,
            name=self.provider,
            endpoint=self.endpoint,
            api_key=self._api_key,
            streaming=streaming,
            malformed=(json.JSONDecodeError,),
        )

    async def aclose(self) -> None:
        await self._clients.aclose()


def _key_env(entry: ModelEntry) -> str | None:
    return entry.api_key_env or "OPENAI_API_KEY"


def _build_openai(entry: ModelEntry, logprobs: bool) -> Backend:
    return OpenAIBackend(
        entry.model,
        Endpoint(entry.provider, entry.base_url, _key_env(entry), default_url=OPENAI_URL, keyless=NO_KEY),
        capabilities=Capabilities.of(entry, tools=True, streaming=True, logprobs=True),
        defaults=entry.params,
    )


def _build_compatible(entry: ModelEntry, logprobs: bool) -> Backend:
    # A local server needs no key: one is required only when the entry names its variable.
    return OpenAIBackend(
        entry.model,
        Endpoint(entry.provider, entry.base_url, entry.api_key_env, default_url=OPENAI_URL, keyless=NO_KEY),
        capabilities=Capabilities.of(entry, tools=True, streaming=True, logprobs=False),
        defaults=entry.params,
    )


def _needs_base_url(entry: ModelEntry) -> str | None:
    return None if entry.base_url else "an openai-compatible entry needs base_url"


OPENAI = BackendKind(
    name="openai",
    build=_build_openai,
    default_provider=lambda model: "openai",
    availability=lambda entry: hosted.availability(_key_env(entry), entry.base_url),
    sdk="openai",
    extra="openai",
    key_env=_key_env,
)
OPENAI_COMPATIBLE = BackendKind(
    name="openai-compatible",
    build=_build_compatible,
    # Not `openai`: that value names the OpenAI service's telemetry flavour. An entry for a
    # vLLM, Ollama or llama.cpp server names its provider (`vllm`, `ollama`, `llama_cpp`).
    default_provider=lambda model: A.PROVIDER_OPENAI_COMPATIBLE,
    availability=lambda entry: hosted.availability(entry.api_key_env, entry.base_url),
    sdk="openai",
    extra="openai",
    check=_needs_base_url,
    # the chat template the server applies ("chatml"), so likelihood attribution can render a
    # recorded chat request as the text /v1/completions scores (scaffolds/backends/openai_scoring.py)
    option_keys=frozenset({"scoring_template"}),
)
