"""The task data model's records: shards, checks, ablations, worlds and task instances.

A *shard* is one named piece of the world a task gives the model (a fact in the prompt, a
document, dataset rows, a tool's results, a file). Every shard can be removed or replaced
by a declared plausible wrong value; ``Task.instantiate`` (:mod:`.suite`) builds the
episode's world with at most one shard ablated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shardscope.scaffolds.tools import ToolContext

from shardscope.scaffolds.types import ToolSpec

ShardKind = Literal["fact", "document", "rows", "tool_result", "file", "function"]
AblationMode = Literal["removed", "replaced"]
CheckType = Literal["exact", "numeric", "regex", "tests_pass", "tool_call", "irrelevance"]
Outcome = Literal["success", "failure"]
AfterCall = Literal["end", "result"]

SHARD_KINDS: tuple[str, ...] = ("fact", "document", "rows", "tool_result", "file", "function")
ABLATION_MODES: tuple[str, ...] = ("removed", "replaced")
CHECK_TYPES: tuple[str, ...] = (
    "exact", "numeric", "regex", "tests_pass", "tool_call", "irrelevance"
)
AFTER_CALL: tuple[str, ...] = ("end", "result")
# The parts of a declared function a "function" shard can name (see instantiate.py).
FUNCTION_FIELDS: tuple[str, ...] = ("description", "param", "hints", "whole")


def frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``value`` (records hold these, so they stay frozen)."""
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Edit:
    """Replace ``find`` by ``replace`` in a text (``file`` names the file, for packages)."""

    find: str
    replace: str
    file: str | None = None


@dataclass(frozen=True)
class Shard:
    """One removable, replaceable piece of a task's world.

    ``content`` is the fact text (fact shards). ``params`` locates the other kinds:
    document ``{"doc"}``, rows ``{"table", "where"}``, file ``{"path"}``, tool_result
    ``{"tool"}``, function ``{"function", "field", "param"}`` (a part of a declared
    function: its description, a parameter's description, a parameter's enum/default hints,
    or the whole function). ``replacement`` is the wrong value used when the shard is
    replaced: a string (fact, tool_result, function), edits (document, file) or column
    values (rows); a function shard may have none (then only "removed" applies). A fact
    shard's ``params["removed"]`` is the text left when it is removed (default: nothing).
    """

    name: str
    kind: ShardKind
    description: str
    content: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    replacement: str | tuple[Edit, ...] | Mapping[str, Any] | None = None
    implied_answer: str | None = None  # the answer the replacement implies ("follows the shard")

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", frozen_mapping(self.params))
        if isinstance(self.replacement, Mapping):
            object.__setattr__(self, "replacement", frozen_mapping(self.replacement))


@dataclass(frozen=True)
class Check:
    """How a final answer is judged. Which fields matter depends on ``type``."""

    type: CheckType
    expected: str | float | None = None  # exact: text; numeric: number
    aliases: tuple[str, ...] = ()  # exact: other accepted answers
    tolerance: float = 1e-6  # numeric: absolute
    relative: float = 0.0  # numeric: relative to expected
    pattern: str | None = None  # regex: searched in the answer
    ignore_case: bool = True  # regex
    tests: str = "tests"  # tests_pass: the authoritative tests directory of the package
    # tests_pass: write the final answer's code to this file of the tree before the tests run
    # (code-completion benchmarks); ``prelude`` is code placed before it (the original stub).
    answer_file: str | None = None
    prelude: str = ""
    entry_point: str | None = None
    # tool_call: the accepted calls, each {function: {param: [allowed values]}}; "" in a
    # list means the parameter may be omitted. The model must make exactly these calls
    # (any order when there are several).
    calls: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class DeclaredTools:
    """Functions a task offers the model that are recorded, never executed.

    After a call to one of them the episode ends (``after_call="end"``) or the model gets
    ``result`` as the call's result and goes on (``"result"``)."""

    functions: tuple[ToolSpec, ...] = ()
    after_call: AfterCall = "end"
    result: str = "ok"

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.functions)


@dataclass(frozen=True)
class Ablation:
    """Remove one shard, or replace it by its declared wrong value."""

    shard: str
    mode: AblationMode = "removed"


@dataclass(frozen=True, eq=False)
class World:
    """What a suite's tasks draw on: a corpus, a dataset directory, a Python package."""

    corpus: Mapping[str, str] = field(default_factory=dict)
    dataset_dir: Path | None = None  # schema.sql + one <table>.csv per table
    dataset_tables: tuple[str, ...] = ()
    package_dir: Path | None = None
    limits: Mapping[str, float] = field(default_factory=dict)  # ToolContext limit overrides


@dataclass(frozen=True)
class TaskInstance:
    """A task made concrete for one episode: the prompt and the tools' world."""

    prompt: str
    tools: tuple[str, ...]
    tool_context: ToolContext
    shards: tuple[str, ...]  # names of the shards present (a removed one is absent)
    ablation: Ablation | None
    task_id: str
    root: Path  # the directory given to instantiate; the tool workdir is inside it
    declared: DeclaredTools = field(default_factory=DeclaredTools)


@dataclass(frozen=True)
class CheckResult:
    outcome: Outcome
    score: float
    detail: str
