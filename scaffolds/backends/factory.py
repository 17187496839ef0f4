"""Catalog entry -> backend. Each provider module is imported only when its entry is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shardscope.scaffolds.backends.base import Backend, Capabilities

if TYPE_CHECKING:
    from shardscope.config.catalog import ModelEntry


def _capabilities(entry: ModelEntry, **defaults: bool) -> Capabilities:
    return Capabilities(**{**defaults, **entry.capabilities})


def _openai(entry: ModelEntry, logprobs: bool) -> Backend:
    from shardscope.scaffolds.backends.openai_chat import OpenAIBackend

    return OpenAIBackend(
        entry.model,
        base_url=entry.base_url,
        api_key_env=entry.key_env,
        provider=entry.provider,
        capabilities=_capabilities(entry, tools=True, streaming=True, logprobs=True),
        defaults=entry.params,
    )


def _openai_compatible(entry: ModelEntry, logprobs: bool) -> Backend:
    from shardscope.scaffolds.backends.openai_chat import OpenAIBackend

    return OpenAIBackend(
        entry.model,
        base_url=entry.base_url,
        api_key_env=entry.api_key_env,
        provider=entry.provider,
        capabilities=_capabilities(entry, tools=True, streaming=True, logprobs=False),
        defaults=entry.params,
        key_required=bool(entry.api_key_env),
    )


def _anthropic(entry: ModelEntry, logprobs: bool) -> Backend:
    from shardscope.scaffolds.backends.anthropic_messages import AnthropicBackend

    return AnthropicBackend(
        entry.model,
        base_url=entry.base_url,
        api_key_env=entry.key_env or "ANTHROPIC_API_KEY",
        capabilities=_capabilities(entry, tools=True, streaming=True, logprobs=False),
        defaults=entry.params,
    )


def _litellm(entry: ModelEntry, logprobs: bool) -> Backend:
    from shardscope.scaffolds.backends.litellm_chat import LiteLLMBackend

    return LiteLLMBackend(
        entry.model,
        base_url=entry.base_url,
        api_key_env=entry.key_env,
        capabilities=_capabilities(entry, tools=True, streaming=True, logprobs=False),
        defaults=entry.params,
    )


def _local(entry: ModelEntry, logprobs: bool) -> Backend:
    from shardscope.scaffolds.backends.local import LocalBackend

    options = entry.options
    return LocalBackend(
        entry.model,
        entry.weights_spec(),
        n_ctx=int(options.get("n_ctx", 4096)),
        n_threads=int(options.get("n_threads", 2)),
        logprobs=logprobs,
        chat_template=entry.capabilities.get("chat_template", True),
        tools=entry.capabilities.get("tools"),
        defaults=entry.params,
        sampling=options.get("sampling"),
        prefix_cache=bool(options.get("prefix_cache", True)),
    )


def _scripted(entry: ModelEntry, logprobs: bool) -> Backend:
    from shardscope.scaffolds.backends.scripted import ScriptedBackend

    return ScriptedBackend(model=entry.model, responses=list(entry.options.get("responses", ())))


BUILDERS: dict[str, Callable[[Any, bool], Backend]] = {
    "openai": _openai,
    "openai-compatible": _openai_compatible,
    "anthropic": _anthropic,
    "litellm": _litellm,
    "local": _local,
    "scripted": _scripted,
}


def build(entry: ModelEntry, *, logprobs: bool = False) -> Backend:
    """The backend for ``entry`` (raises MissingDependencyError naming the extra to install)."""
    return BUILDERS[entry.backend](entry, logprobs)
