"""Scaffolds: named, parameterized agent loops whose identity is provable from the data.

A scaffold is configuration in, behaviour out: its class holds its prompt texts, its
parameters are a frozen dataclass, and :func:`identity` hashes code + prompts + parameters.
Two episodes "used the same scaffold" exactly when their ``shardscope.scaffold.hash`` match.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from shardscope.config.errors import ConfigError

EndReason = Literal["final_answer", "protocol_error", "budget_exhausted"]


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


class Scaffold(ABC):
    """Base class: subclasses set ``name``, ``description``, ``prompts`` and ``Params``."""

    name: ClassVar[str]
    description: ClassVar[str]
    prompts: ClassVar[Mapping[str, str]]
    Params: ClassVar[type[ScaffoldParams]] = ScaffoldParams

    def __init__(self, params: ScaffoldParams | None = None) -> None:
        self.params = params or self.Params()

    @abstractmethod
    async def run(self, episode: Any) -> EpisodeResult:
        """Run one episode (an :class:`shardscope.scaffolds.agents.runtime.Episode`)."""

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


_REGISTRY: dict[str, type[Scaffold]] = {}


def register(cls: type[Scaffold]) -> type[Scaffold]:
    """Class decorator: make a scaffold available by its name."""
    _REGISTRY[cls.name] = cls
    return cls


def scaffold_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_scaffold(name: str, overrides: Mapping[str, Any] | None = None) -> Scaffold:
    """The scaffold registered as ``name``, with parameter overrides applied and checked."""
    _load_builtins()
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"unknown scaffold {name!r}; known scaffolds: {', '.join(scaffold_names())}")
    return cls(make_params(cls, overrides or {}))


def make_params(cls: type[Scaffold], overrides: Mapping[str, Any]) -> ScaffoldParams:
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


def _load_builtins() -> None:
    # Importing the modules registers them; done lazily so importing base stays cheap.
    from shardscope.scaffolds.agents import plan_execute, react_text, react_tools  # noqa: F401


