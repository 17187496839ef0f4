"""What every tool shares: the episode context it runs in, its result, and the base class
that validates arguments against the tool's JSON schema before running it.

A tool never raises for the model's mistakes (bad arguments, unknown files, bad SQL,
timeouts): it returns ``ToolResult(ok=False, ...)`` with a message the model can act on.
Only bugs in shardscope itself raise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

from shardscope.config.errors import ConfigError
from shardscope.scaffolds.types import ToolSpec

DEFAULT_MAX_OUTPUT_CHARS = 4000


class UnknownToolError(ConfigError):
    """A tool name that no registered tool has."""


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call, as fed back to the model."""

    ok: bool
    output: str
    error_type: str | None = None
    error_message: str | None = None
    truncated: bool = False

    @classmethod
    def fail(cls, error_type: str, message: str, output: str = "") -> ToolResult:
        """A refused or failed call; ``message`` tells the model what to do differently."""
        return cls(False, output, error_type=error_type, error_message=message)


@dataclass(frozen=True)
class ToolContext:
    """The world one episode's tools see: its temp directory, documents, dataset and limits."""

    workdir: Path
    corpus: Mapping[str, str] = field(default_factory=dict)
    dataset_path: Path | None = None
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    timeout_s: float = 10.0
    memory_mb: int = 512
    max_rows: int = 100
    # tool name -> the text that tool returns instead of its real result ("tool_result"
    # shards replaced by an ablation).
    tool_overrides: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "workdir", Path(self.workdir))
        object.__setattr__(self, "corpus", MappingProxyType(dict(self.corpus)))
        object.__setattr__(self, "tool_overrides", MappingProxyType(dict(self.tool_overrides)))


def truncate(text: str, limit: int, *, keep_tail: bool = False) -> tuple[str, bool]:
    """``text`` cut to about ``limit`` characters with a note saying so; (text, truncated).

    With ``keep_tail`` the end is kept too (a test run's summary is at the end)."""
    if len(text) <= limit:
        return text, False
    note = f"\n[... output truncated: {len(text):,} characters, showing {limit:,} ...]\n"
    if not keep_tail:
        return text[:limit] + note, True
    head = limit // 2
    return text[:head] + note + text[len(text) - (limit - head) :], True


class Tool(ABC):
    """A tool: a JSON-schema spec plus ``run``. Subclasses implement ``execute``."""

    spec: ToolSpec

    def __init__(self) -> None:
        self._validator = jsonschema.Draft202012Validator(self.spec.parameters)

    @property
    def name(self) -> str:
        return self.spec.name

    def run(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Validate ``arguments`` against the schema, then execute; never raises for bad input."""
        problem = self.argument_problem(arguments)
        if problem is not None:
            return ToolResult.fail("invalid_arguments", problem)
        if self.name in ctx.tool_overrides:
            return ToolResult(True, ctx.tool_overrides[self.name])
        result = self.execute(arguments, ctx)
        if result.truncated or len(result.output) <= ctx.max_output_chars:
            return result
        text, _ = truncate(result.output, ctx.max_output_chars)
        return ToolResult(result.ok, text, result.error_type, result.error_message, truncated=True)

    def argument_problem(self, arguments: Any) -> str | None:
        """Why ``arguments`` do not fit the schema, in words a model can act on; None if fine."""
        if not isinstance(arguments, dict):
            return f"arguments must be a JSON object, got {type(arguments).__name__}"
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
        if not errors:
            return None
        props = self.spec.parameters.get("properties", {})
        expected = ", ".join(f"{k} ({v.get('type', 'any')})" for k, v in props.items())
        messages = []
        for error in errors[:3]:
            where = ".".join(str(p) for p in error.path)
            messages.append(f"{where}: {error.message}" if where else error.message)
        return (
            f"invalid arguments for {self.name}: {'; '.join(messages)}. "
            f"Expected arguments: {expected or 'none'}"
        )

    @abstractmethod
    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Run with arguments already validated against ``spec.parameters``."""
