"""``litellm`` backend: any provider string LiteLLM supports (``anthropic/...``, ``gemini/...``,
``openai/...`` at any ``api_base``), in LiteLLM's OpenAI-shaped responses.

This is the one module that imports LiteLLM. It sets ``LITELLM_LOCAL_MODEL_COST_MAP`` first
(otherwise LiteLLM downloads a price map at import), and turns LiteLLM's retries and the
underlying SDK's off (``num_retries=0``, ``max_retries=0``): tenacity in
:mod:`shardscope.scaffolds.backends.traced` is the one retry layer.
"""

from __future__ import annotations

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
    BadRequestError,
    CallTimeoutError,
    MalformedResponseError,
    StreamInterruptedError,
)
from shardscope.scaffolds.backends.log_redaction import protect_logs
from shardscope.scaffolds.backends.openai_chat import NO_KEY
from shardscope.scaffolds.backends.provider_errors import (
    error_for_status,
    error_kind,
    require,
    scrub,
)
from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, StreamChunk, ToolSpec

# LiteLLM's provider names -> gen_ai.provider.name values of the GenAI conventions.
GENAI_PROVIDER = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
}


def import_litellm() -> Any:
    """LiteLLM, imported without its network fetch of the price map."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = require("litellm", "litellm", "the litellm backend")
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMBackend(Backend):
    """A model behind ``litellm.acompletion``; the provider is the one LiteLLM resolves."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        capabilities: Capabilities = Capabilities(tools=True, streaming=True, logprobs=False),
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self._litellm = import_litellm()
        self.route = model  # what LiteLLM is given: "<provider>/<model>"
        self.capabilities = capabilities
        self.defaults = dict(defaults or {})
        self.base_url = base_url
        self.api_key_env = api_key_env
        self._api_key = os.environ.get(api_key_env) if api_key_env else None
        if base_url and not api_key_env:
            self._api_key = NO_KEY  # a local endpoint; the SDK under LiteLLM insists on some key
        if api_key_env and not self._api_key:
            raise AuthenticationError(
                f"litellm: no API key: set the environment variable {api_key_env} "
                "(keys are read from the environment only)"
            )
        try:
            name, provider, _, _ = self._litellm.get_llm_provider(model, api_base=base_url)
        except Exception as exc:  # LiteLLM raises its BadRequestError for unknown providers
            raise BadRequestError(f"litellm cannot route model {model!r}: {exc}") from None
        self.model = name  # gen_ai.request.model: the provider's name, as for other backends
        self.litellm_provider = provider
        self.provider = GENAI_PROVIDER.get(provider, provider or "litellm")
        protect_logs(self._api_key)
        if base_url:
            parts = urlsplit(base_url)
            self.server_address = parts.hostname
            self.server_port = parts.port or (443 if parts.scheme == "https" else 80)

    def _kwargs(self, body: dict[str, Any], config: GenerationConfig) -> dict[str, Any]:
        extra: dict[str, Any] = {"timeout": config.timeout_s, "num_retries": 0, "max_retries": 0}
        if self.base_url:
            extra["api_base"] = self.base_url
        if self._api_key:
            extra["api_key"] = self._api_key
        return {**body, **extra}

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> ModelOutput:
        config = self.with_defaults(config)
        body = wire.request_body(self.route, messages, tools, config)
        try:
            response = await self._litellm.acompletion(**self._kwargs(body, config))
        except Exception as exc:
            raise self._error(exc) from None
        return wire.parse_response(_as_dict(response), body, self.provider)

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> AsyncIterator[StreamChunk | ModelOutput]:
        config = self.with_defaults(config)
        body = wire.request_body(self.route, messages, tools, config)
        body.update(stream=True, stream_options={"include_usage": True})
        assembler = wire.StreamAssembler(self.provider)
        try:
            chunks = await self._litellm.acompletion(**self._kwargs(body, config))
            async for chunk in chunks:
                for piece in assembler.add(_as_dict(chunk)):
                    yield piece
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, streaming=assembler.chunks > 0) from None
        if assembler.usage is None and not assembler.text and not assembler.calls:
            # LiteLLM turns a body that is not a stream at all into one empty "stop" chunk.
            raise MalformedResponseError(
                f"litellm ({self.litellm_provider}): the stream carried no content and no usage "
                "(the provider's answer was not a stream)"
            )
        yield assembler.output(body)

    def _error(self, exc: Exception, *, streaming: bool = False) -> BackendError:
        litellm = self._litellm
        text = scrub(str(getattr(exc, "message", None) or exc), self._api_key)
        where = f"litellm ({self.litellm_provider})"
        if isinstance(exc, litellm.Timeout):
            return CallTimeoutError(f"{where}: the request timed out ({text})")
        status = getattr(exc, "status_code", None)
        if "missing credentials" in text.lower() or "api_key client option must be set" in text.lower():
            return AuthenticationError(f"{where}: no credentials for the provider: {text}")
        if _looks_like_bad_json(text):  # LiteLLM reports these as 500 / connection errors
            return MalformedResponseError(f"{where}: malformed response: {text}")
        if streaming and (isinstance(exc, litellm.APIConnectionError) or "MidStream" in type(exc).__name__):
            return StreamInterruptedError(f"{where}: the stream broke off: {text}")
        if isinstance(exc, litellm.APIConnectionError) or status is None:
            return BackendConnectionError(f"{where}: cannot reach the provider: {text}")
        return error_for_status(
            where,
            int(status),
            text,
            headers=_headers(exc),
            kind=error_kind(getattr(exc, "body", None)),
            hint=f"check {self.api_key_env}" if self.api_key_env else "check the provider's API key",
        )


def _looks_like_bad_json(text: str) -> bool:
    lowered = text.lower()
    return "expecting value" in lowered or "jsondecodeerror" in lowered or "invalid json" in lowered


def _headers(exc: Exception) -> Mapping[str, str] | None:
    headers = getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    if headers:
        return headers
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        raise MalformedResponseError(f"litellm: the response is not JSON: {str(obj)[:200]}")
    return dump()
