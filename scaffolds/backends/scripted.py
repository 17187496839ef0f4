"""A deterministic backend for tests and simulations: queued responses or a policy function.

Each queued item is a :class:`Scripted` response (text, tool calls, an error to raise, a
delay), a plain string, or a :class:`BackendError`. A ``policy`` callable, when given,
answers every call that the queue does not (it sees the messages, so simulated "models" can
depend on what they are shown). A ``scripted`` catalog entry queues its ``responses``; the
kind's registry row is at the end of this module.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from shardscope.config.catalog import ModelEntry
from shardscope.scaffolds.backends.base import Backend, BackendKind, Capabilities
from shardscope.scaffolds.backends.errors import BackendError, ScriptExhaustedError
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


@dataclass(frozen=True)
class Scripted:
    """One scripted response."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    error: BackendError | None = None
    delay_s: float = 0.0
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class ScriptedCall:
    """What the backend was asked, kept for assertions."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    config: GenerationConfig


Policy = Callable[[Sequence[Message], Sequence[ToolSpec], GenerationConfig], "Scripted | str"]
_TOKEN = re.compile(r"\s*\S+")


@dataclass
class ScriptedBackend(Backend):
    """Answers from a queue, then from ``policy``; raises ScriptExhaustedError when both are out."""

    model: str = "scripted"
    responses: Iterable[Scripted | str | BackendError] = ()
    policy: Policy | None = None
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(tools=True, streaming=True, logprobs=True))
    provider: str = "scripted"
    in_process: bool = True
    calls: list[ScriptedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Scripted | str | BackendError] = deque(self.responses)

    def queue(self, *responses: Scripted | str | BackendError) -> None:
        self._queue.extend(responses)

    def _next(self, messages: Sequence[Message], tools: Sequence[ToolSpec], config: GenerationConfig) -> Scripted:
        if self._queue:
            item = self._queue.popleft()
        elif self.policy is not None:
            item = self.policy(messages, tools, config)
        else:
            raise ScriptExhaustedError(
                f"scripted backend {self.model!r} got call {len(self.calls)} but no response "
                "was queued for it"
            )
        if isinstance(item, BackendError):
            return Scripted(error=item)
        return Scripted(text=item) if isinstance(item, str) else item

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> ModelOutput:
        self.calls.append(ScriptedCall(tuple(messages), tuple(tools), config))
        response = self._next(messages, tools, config)
        if response.delay_s:
            await asyncio.sleep(response.delay_s)
        if response.error is not None:
            raise response.error
        pieces = _TOKEN.findall(response.text)
        tokens = tuple(
            StreamChunk(
                p,
                logprob=-0.1 * (i % 5) if config.logprobs else None,
                top_logprobs=(TokenLogprob(p, -0.1 * (i % 5)),) if config.top_logprobs else (),
            )
            for i, p in enumerate(pieces)
        )
        prompt_words = sum(len(m.content.split()) for m in messages)
        return ModelOutput(
            text=response.text,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason
            or ("tool_calls" if response.tool_calls else "stop"),
            usage=Usage(
                input_tokens=response.input_tokens if response.input_tokens is not None else prompt_words,
                output_tokens=response.output_tokens if response.output_tokens is not None else len(pieces),
            ),
            response_model=self.model,
            response_id=f"scripted-{len(self.calls)}",
            tokens=tokens,
            raw_request={"messages": [m.to_genai() for m in messages], "tools": [t.name for t in tools]},
            raw_response={"text": response.text, "tool_calls": [c.name for c in response.tool_calls]},
        )


def _build(entry: ModelEntry, logprobs: bool) -> Backend:
    return ScriptedBackend(model=entry.model, responses=list(entry.options.get("responses", ())))


SCRIPTED = BackendKind(
    name="scripted",
    build=_build,
    default_provider=lambda model: "scripted",
    availability=lambda entry: (True, "scripted responses (tests)"),
    option_keys=frozenset({"responses"}),
)
