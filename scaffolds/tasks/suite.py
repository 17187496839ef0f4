"""Tasks and suites: a task's prompt, shards, check and reference answer, and building one
episode's world from it (``Task.instantiate``, see :mod:`.instantiate`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shardscope.scaffolds.tasks.errors import AblationError, UnknownTaskError
from shardscope.scaffolds.tasks.instantiate import instantiate
from shardscope.scaffolds.tasks.model import (
    Ablation,
    Check,
    DeclaredTools,
    Edit,
    Shard,
    TaskInstance,
    World,
    frozen_mapping,
)


@dataclass(frozen=True)
class Task:
    """One task: a prompt template, its shards, the check and a reference answer."""

    id: str
    prompt: str
    shards: tuple[Shard, ...]
    check: Check
    tools: tuple[str, ...]  # the task's override, else the suite's tools
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None  # a correct final answer (not for tests_pass)
    reference_sql: str | None = None  # a query whose first cell is the answer
    patch: tuple[Edit, ...] = ()  # edits applied to the package (the bug to fix)
    world: World = field(default_factory=World, repr=False, compare=False)
    suite: str = ""
    declared: DeclaredTools = field(default_factory=DeclaredTools)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", frozen_mapping(self.metadata))

    def shard(self, name: str) -> Shard:
        """The shard called ``name``; AblationError listing the task's shards if none."""
        for shard in self.shards:
            if shard.name == name:
                return shard
        known = ", ".join(s.name for s in self.shards)
        raise AblationError(f"task {self.id!r} has no shard {name!r}; its shards: {known}")

    def instantiate(self, workdir: Path, ablation: Ablation | None = None) -> TaskInstance:
        """Build this task's world for one episode under ``workdir``, ``ablation`` applied."""
        return instantiate(self, Path(workdir), ablation)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    tools: tuple[str, ...]
    tasks: tuple[Task, ...]
    path: Path
    # where the tasks come from: source, version, license (imported benchmarks)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def task(self, task_id: str) -> Task:
        """The task with id ``task_id``; UnknownTaskError if there is none."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise UnknownTaskError(f"suite {self.name!r} has no task {task_id!r}")
