"""The backend registry: one row per kind of backend, and what the product asks of a catalog entry.

Each provider module declares its kind's row, a :class:`~shardscope.scaffolds.backends.base.BackendKind`
(builder, allowed catalog keys, default provider name, SDK and extra, API-key variable, what
an entry must hold, availability check); :data:`KINDS` lists them. Importing this module
imports the provider modules but no SDK: a builder imports its SDK when it runs.

- :func:`load_catalog`: the catalog (:mod:`shardscope.config.catalog`, pure data), each entry
  checked against its kind and given its kind's default provider name.
- :func:`availability`: whether an entry can run here, and why not; never calls a provider.
- :func:`key_env`: the environment variable an entry's API key comes from.
- :func:`build_backend`, :func:`open_model`: an entry's backend, or its :class:`TracedModel`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from shardscope.config.catalog import (
    BUILTIN_CATALOG,
    COMMON_KEYS,
    Catalog,
    ModelEntry,
    read_catalog,
)
from shardscope.config.errors import ConfigError
from shardscope.scaffolds.backends.anthropic_messages import ANTHROPIC
from shardscope.scaffolds.backends.base import Backend, BackendKind
from shardscope.scaffolds.backends.litellm_chat import LITELLM
from shardscope.scaffolds.backends.local import LOCAL
from shardscope.scaffolds.backends.openai_chat import OPENAI, OPENAI_COMPATIBLE
from shardscope.scaffolds.backends.scripted import SCRIPTED
from shardscope.scaffolds.backends.traced import CallTimeout, RetryPolicy, TracedModel
from shardscope.tracer.spans import Tracing

KINDS: Mapping[str, BackendKind] = MappingProxyType(
    {kind.name: kind for kind in (LOCAL, OPENAI, ANTHROPIC, LITELLM, OPENAI_COMPATIBLE, SCRIPTED)}
)


def load_catalog(extra: Path | None = None, *, builtin: Path = BUILTIN_CATALOG) -> Catalog:
    """The shipped catalog with the user's file merged over it, every entry checked.

    ``extra`` None means the ``models_file`` setting (``SHARDSCOPE_MODELS_FILE``, config file).
    """
    catalog = read_catalog(extra, builtin=builtin)
    return Catalog({entry.id: check_entry(entry) for entry in catalog}, catalog.sources)


def check_entry(entry: ModelEntry) -> ModelEntry:
    """``entry`` checked against its kind (ConfigError says what to fix), with its provider name."""
    kind = kind_of(entry)
    unknown = sorted(set(entry.options) - kind.option_keys)
    if unknown:
        allowed = ", ".join(sorted(COMMON_KEYS | kind.option_keys))
        raise ConfigError(f"{entry.where}: unknown keys {unknown}; allowed: {allowed}")
    complaint = kind.check(entry)
    if complaint:
        raise ConfigError(f"{entry.where}: {complaint}")
    if entry.provider:
        return entry
    return dataclasses.replace(entry, provider=kind.default_provider(entry.model))


def kind_of(entry: ModelEntry) -> BackendKind:
    """The registry row of ``entry``'s backend."""
    try:
        return KINDS[entry.backend]
    except KeyError:
        raise ConfigError(
            f"{entry.where}: backend {entry.backend!r} is unknown; choose from {', '.join(KINDS)}"
        ) from None


def key_env(entry: ModelEntry) -> str | None:
    """The environment variable holding ``entry``'s API key, if it needs one."""
    return kind_of(entry).key_env(entry)


def availability(entry: ModelEntry) -> tuple[bool, str]:
    """(can run here, why or why not). Never calls a provider; probes only a base URL."""
    kind = kind_of(entry)
    if kind.sdk and importlib.util.find_spec(kind.sdk) is None:
        return False, f"package {kind.sdk!r} not installed: pip install 'shardscope[{kind.extra}]'"
    return kind.availability(entry)


def build_backend(entry: ModelEntry, *, logprobs: bool = False) -> Backend:
    """The backend an entry describes. ``logprobs`` matters for local models (slower).

    Raises MissingDependencyError naming the extra to install, AuthenticationError when the
    key's variable is unset.
    """
    return kind_of(entry).build(entry, logprobs)


def open_model(
    entry: ModelEntry,
    tracing: Tracing,
    *,
    logprobs: bool = False,
    stream: bool | None = None,
    top_logprobs: int = 5,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    call_timeout: CallTimeout | None = None,
) -> TracedModel:
    """The entry's backend wrapped in a :class:`TracedModel` with the catalog's price."""
    return TracedModel(
        build_backend(entry, logprobs=logprobs),
        tracing,
        model_id=entry.id,
        price=entry.price,
        retry=retry,
        stream=stream,
        logprobs=logprobs,
        top_logprobs=top_logprobs if logprobs else 0,
        sleep=sleep,
        call_timeout=call_timeout,
    )
