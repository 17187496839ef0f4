"""``litellm`` backend: any provider string LiteLLM supports (``anthropic/...``, ``gemini/...``,
``openai/...`` at any ``api_base``), in LiteLLM's OpenAI-shaped responses.

This is the one module that imports LiteLLM. It sets ``LITELLM_LOCAL_MODEL_COST_MAP`` first
(otherwise LiteLLM downloads a price map at import), and turns LiteLLM's retries and the
underlying SDK's off (``num_retries=0``, ``max_retries=0``): tenacity in
:mod:`shardscope.scaffolds.backends.traced` is the one retry layer. The kind's registry
row is at the end of this module; finding its default provider name or key variable needs
no LiteLLM import.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from shardscope.config.catalog import ModelEntry
from shardscope.scaffolds.backends import hosted
from shardscope.scaffolds.backends import openai_wire as wire
from shardscope.scaffolds.backends.base import Backend, BackendKind, Capabilities
from shardscope.scaffolds.backends.errors import (
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    BadRequestError,
    CallTimeoutError,
    MalformedResponseError,
    StreamInterruptedError,
)
from shardscope.scaffolds.backends.hosted import NO_KEY, Endpoint, as_dict
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
    # OpenAI-compatible servers: no well-known value in the conventions, so a custom one
    "hosted_vllm": "vllm",
    "vllm": "vllm",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "llamafile": "llama_cpp",
}
# The environment variable LiteLLM reads for a provider prefix (when the entry names none).
KEY_ENV = {
    "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY", "groq": "GROQ_API_KEY", "deepseek": "DEEPSEEK_API_KEY",
    "cohere": "COHERE_API_KEY", "cohere_chat": "COHERE_API_KEY", "xai": "XAI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY", "azure": "AZURE_API_KEY",
}


def genai_provider(litellm_provider: str) -> str:
    """The gen_ai.provider.name of one of LiteLLM's provider names ("gemini" -> "gcp.gemini")."""
    return GENAI_PROVIDER.get(litellm_provider, litellm_provider or "litellm")


def _prefix(model: str) -> str:
    """The provider prefix of a LiteLLM route ("gemini/gemini-2.0-flash" -> "gemini")."""
    return model.split("/", 1)[0] if "/" in model else ""


def import_litellm() -> Any:
    """LiteLLM, imported without its network fetch of the price map."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm: Any = require("litellm", "litellm", "the litellm backend")
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMBackend(Backend):
    """A model behind ``litellm.acompletion``; the provider is the one LiteLLM resolves."""

    def __init__(
        self,
        model: str,
        endpoint: Endpoint,
        *,
        capabilities: Capabilities = Capabilities(tools=True, streaming=True, logprobs=False),
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self._litellm = import_litellm()
        self.route = model  # what LiteLLM is given: "<provider>/<model>"
        self.capabilities = capabilities
        self.defaults = dict(defaults or {})
        self.endpoint = endpoint
        self._api_key = endpoint.api_key()
        try:
            name, provider, _, _ = self._litellm.get_llm_provider(model, api_base=endpoint.base_url)
        except Exception as exc:  # LiteLLM raises its BadRequestError for unknown providers
            raise BadRequestError(f"litellm cannot route model {model!r}: {exc}") from None
        self.model = name  # gen_ai.request.model: the provider's name, as for other backends
        self.litellm_provider = provider
        self.provider = genai_provider(provider)
        # Without a base URL LiteLLM picks the provider's host: the span records none.
        self.server_address, self.server_port = endpoint.server_address, endpoint.server_port

    def _kwargs(self, body: dict[str, Any], config: GenerationConfig) -> dict[str, Any]:
        extra: dict[str, Any] = {"timeout": config.timeout_s, "num_retries": 0, "max_retries": 0}
        if self.endpoint.base_url:
            extra["api_base"] = self.endpoint.base_url
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
        return wire.parse_response(as_dict(response, "litellm"), body, self.provider)

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
                for piece in assembler.add(as_dict(chunk, "litellm")):
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
            hint=self.endpoint.hint("check the provider's API key"),
        )


def _looks_like_bad_json(text: str) -> bool:
    lowered = text.lower()
    return "expecting value" in lowered or "jsondecodeerror" in lowered or "invalid json" in lowered


def _headers(exc: Exception) -> Mapping[str, str] | None:
    headers: Mapping[str, str] | None = (
        getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    )
    if headers:
        return headers
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers


def _key_env(entry: ModelEntry) -> str | None:
    if entry.api_key_env or entry.base_url:
        return entry.api_key_env
    return KEY_ENV.get(_prefix(entry.model))


def _build(entry: ModelEntry, logprobs: bool) -> Backend:
    # A base URL with no key variable is a local endpoint; the SDK under LiteLLM insists on some key.
    keyless = NO_KEY if entry.base_url else None
    return LiteLLMBackend(
        entry.model,
        Endpoint("litellm", entry.base_url, _key_env(entry), keyless=keyless),
        capabilities=Capabilities.of(entry, tools=True, streaming=True, logprobs=False),
        defaults=entry.params,
    )


LITELLM = BackendKind(
    name="litellm",
    build=_build,
    default_provider=lambda model: genai_provider(_prefix(model)),
    availability=lambda entry: hosted.availability(
        _key_env(entry), entry.base_url, unchecked="credentials are left to LiteLLM (not checked here)"
    ),
    sdk="litellm",
    extra="litellm",
    key_env=_key_env,
)
