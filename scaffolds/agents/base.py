"""The scaffold contract: named, parameterized agent loops whose identity is provable from
the data, and what an episode gives them.

A scaffold is configuration in, behaviour out: its class holds its prompt texts, its
parameters are a frozen dataclass, and :func:`identity` hashes code + prompts + parameters.
Two episodes "used the same scaffold" exactly when their ``shardscope.scaffold.hash`` match.

``Scaffold.run`` gets an :class:`~shardscope.scaffolds.agents.runtime.Episode`: the traced
model, a :class:`TaskView` of the task instance and a :class:`ToolBox` of tools; it returns
an :class:`EpisodeResult`. Each step records a
:class:`~shardscope.scaffolds.types.StepAction`. Scaffolds are found by name in
:mod:`shardscope.scaffolds.agents.registry`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from shardscope.config.errors import ConfigError

if TYPE_CHECKING:
    from shardscope.scaffolds.agents.runtime import Episode
    from shardscope.scaffolds.tasks.model import DeclaredTools
    from shardscope.scaffolds.tools import Tool, ToolContext
    from shardscope.scaffolds.types import ToolCall, ToolSpec

# "tool_call": the model called a declared function whose call ends the episode
EndReason = Literal["final_answer", "protocol_error", "budget_exhausted", "tool_call"]


@dataclass(frozen=True)
class ScaffoldParams:
    """Parameters every scaffold takes (subclasses add their own)."""

    max_steps: int = 6  # model calls per episode
    token_budget: int = 2048  # output tokens per episode
    max_tokens_per_call: int = 256
    temperature: float = 0.0
    max_protocol_errors: int = 2  # consecutive protocol errors before the episode ends


@dataclass(frozen=True)
class EpisodeResult:
    """How a scaffold's loop ended; the runner turns it into an outcome with the checker."""

    final_answer: str | None
    end_reason: EndReason
    steps: int
    output_tokens: int
    protocol_errors: tuple[str, ...] = ()
    detail: str | None = None
    declared_calls: tuple[ToolCall, ...] = ()  # calls of the task's declared functions


class TaskView(Protocol):
    """What a scaffold sees of the task instance it works on
    (:class:`shardscope.scaffolds.tasks.TaskInstance` is one)."""

    @property
    def prompt(self) -> str: ...

    @property
    def tools(self) -> tuple[str, ...]:
        """The names of the tools this task offers."""

    @property
    def tool_context(self) -> ToolContext:
        """The world the tools run in (workdir, corpus, dataset, limits)."""

    @property
    def declared(self) -> DeclaredTools:
        """Functions offered to the model and recorded, not executed."""


class ToolBox(Protocol):
    """The tools an episode may call, by name
    (:class:`shardscope.scaffolds.tools.ToolRegistry` is one)."""

    def names(self) -> list[str]: ...

    def get(self, name: str) -> Tool: ...

    def specs(self, names: Iterable[str] | None = None) -> list[ToolSpec]: ...


class Scaffold(ABC):
    """Base class: subclasses set ``name``, ``description``, ``prompts`` and ``Params``."""

    name: ClassVar[str]
    description: ClassVar[str]
    prompts: ClassVar[Mapping[str, str]]
    Params: ClassVar[type[ScaffoldParams]] = ScaffoldParams

    def __init__(self, params: ScaffoldParams | None = None) -> None:
        self.params = params or self.Params()

    @abstractmethod
    async def run(self, episode: Episode) -> EpisodeResult:
        """Run one episode: step through it, record each step's action, return the result."""

    @property
    def identity(self) -> str:
        return identity(type(self), self.params)

    def describe_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)


# The code every scaffold's behaviour depends on besides its own module, relative to the
# `scaffolds` package: the loop runtime and the parsers that read a model's text (protocol.py
# hands `<tool_call>` blocks to the backends' text tool-call parser).
_PACKAGE = Path(__file__).resolve().parents[1]
_RUNTIME_FILES = (
    "agents/base.py",
    "agents/runtime.py",
    "agents/protocol.py",
    "backends/text_tool_calls.py",
)


def identity(cls: type[Scaffold], params: ScaffoldParams) -> str:
    """sha256 over the scaffold's code (its module + the shared runtime), prompts, params."""
    code = [(_PACKAGE / name).read_text(encoding="utf-8") for name in _RUNTIME_FILES]
    code.append(inspect.getsource(inspect.getmodule(cls)))  # type: ignore[arg-type]
    payload = json.dumps(
        {
            "name": cls.name,
            "code": [c.replace("\r\n", "\n") for c in code],
            "prompts": dict(cls.prompts),
            "params": dataclasses.asdict(params),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def make_params(cls: type[Scaffold], overrides: Mapping[str, Any]) -> ScaffoldParams:
    """``cls``'s parameters with ``overrides`` applied, each checked and converted."""
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(
            f"scaffold {cls.name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {', '.join(fields)}"
        )
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        default = getattr(cls.Params(), key)
        try:
            values[key] = type(default)(raw) if default is not None else raw
        except (TypeError, ValueError):
            raise ConfigError(
                f"scaffold {cls.name!r}: parameter {key}={raw!r} should be {type(default).__name__}"
            ) from None
    params = cls.Params(**values)
    for key in ("max_steps", "token_budget", "max_tokens_per_call"):
        if getattr(params, key) < 1:
            raise ConfigError(f"scaffold {cls.name!r}: {key} must be >= 1")
    return params
