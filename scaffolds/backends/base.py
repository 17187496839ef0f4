"""The backend contract: the one small interface every model backend implements, and the row
each kind of backend declares for the registry.

A backend turns our message list (+ tool specs + generation config) into a
:class:`~shardscope.scaffolds.types.ModelOutput`, optionally as a stream of chunks. It holds only the
translation to and from its provider's wire format: no tracing, no retries (those live in
:mod:`shardscope.scaffolds.backends.traced`, once, for every backend), and it raises the normalized
errors of :mod:`shardscope.scaffolds.backends.errors`.

A :class:`BackendKind` is what one kind of catalog entry (``backend = "openai"``, ...) needs:
its builder, allowed keys, default provider name, SDK and extra, API-key variable and
availability check. Each provider module declares its row(s);
:mod:`shardscope.scaffolds.backends.registry` lists them.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, StreamChunk, ToolSpec

if TYPE_CHECKING:
    from shardscope.config.catalog import ModelEntry


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; scaffolds adapt to these flags, never to provider names."""

    tools: bool = False  # native tool calls (else the scaffold or backend parses text)
    streaming: bool = False
    logprobs: bool = False
    system_prompt: bool = True
    chat_template: bool = True  # False: a base model that continues raw text

    @classmethod
    def of(cls, entry: ModelEntry, **defaults: bool) -> Capabilities:
        """A kind's default flags with the catalog entry's overrides (``tools = false``, ...)."""
        return cls(**{**defaults, **entry.capabilities})


class Backend(ABC):
    """A model behind one provider. Subclasses set the class attributes and ``generate``."""

    provider: str = "unknown"  # gen_ai.provider.name: openai, anthropic, llama_cpp, ...
    model: str = ""  # the provider's model name (gen_ai.request.model)
    capabilities: Capabilities = Capabilities()
    server_address: str | None = None
    server_port: int | None = None
    in_process: bool = False  # True for local models: their spans are INTERNAL, not CLIENT
    # Catalog defaults (temperature, top_p, max_tokens, seed) for settings a call leaves None.
    defaults: Mapping[str, Any] = {}

    @abstractmethod
    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> ModelOutput:
        """One complete call."""

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> AsyncIterator[StreamChunk | ModelOutput]:
        """Chunks as they arrive, then exactly one final :class:`ModelOutput`.

        The default, for backends that cannot stream, yields the whole text as one chunk.
        """
        output = await self.generate(messages, tools, config)
        for chunk in output.tokens or (StreamChunk(output.text),):
            yield chunk
        yield output

    def plan_concurrency(self, n: int) -> None:
        """The caller will make up to ``n`` calls at once (a hint; most backends ignore it)."""
        return None

    async def aclose(self) -> None:
        """Release clients, sessions, loaded weights."""
        return None

    def describe(self) -> str:
        return f"{self.provider}:{self.model}"

    def with_defaults(self, config: GenerationConfig) -> GenerationConfig:
        """``config`` with the catalog's defaults filled in where the call left a setting None."""
        changes = {k: v for k, v in self.defaults.items() if getattr(config, k, 0) is None}
        return dataclasses.replace(config, **changes) if changes else config


def render_transcript(messages: Sequence[Message]) -> str:
    """Messages as one plain text, for base models with no chat template.

    Scaffolds that target base models put the whole transcript in their messages already;
    this only joins contents, adding no role markers of its own.
    """
    return "\n\n".join(m.content for m in messages if m.content)


def _named_key(entry: ModelEntry) -> str | None:
    return entry.api_key_env


def _no_complaint(entry: ModelEntry) -> str | None:
    return None


@dataclass(frozen=True)
class BackendKind:
    """One row of the backend registry: a kind of catalog entry, what it needs, how it is built.

    Nothing here imports an SDK: ``build`` imports it when it runs (and raises
    MissingDependencyError naming ``extra`` when it is missing).
    """

    name: str  # the catalog's `backend` value
    build: Callable[[ModelEntry, bool], Backend]  # (entry, logprobs) -> backend
    default_provider: Callable[[str], str]  # the provider's model name -> gen_ai.provider.name
    availability: Callable[[ModelEntry], tuple[bool, str]]  # asked once `sdk` is importable
    option_keys: frozenset[str] = frozenset()  # catalog keys beyond the common ones
    sdk: str | None = None  # the module this kind imports
    extra: str | None = None  # pip install 'shardscope[<extra>]' installs `sdk`
    key_env: Callable[[ModelEntry], str | None] = _named_key  # the API key's variable, if any
    check: Callable[[ModelEntry], str | None] = _no_complaint  # what is wrong with an entry
