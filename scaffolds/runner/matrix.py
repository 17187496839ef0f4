"""The run matrix: suites x scaffolds x models x seeds (x ablations), and its episodes."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from shardscope.config.errors import ConfigError
from shardscope.scaffolds.runner.shard import parse_shard
from shardscope.scaffolds.tasks.model import Ablation, AblationMode

if TYPE_CHECKING:
    from shardscope.scaffolds.tasks import Suite, Task


@dataclass(frozen=True)
class MatrixSpec:
    """What to run. Stored with the run (``shardscope.run.config``) so it can be resumed."""

    suites: tuple[str, ...]
    models: tuple[str, ...]
    scaffolds: tuple[str, ...]
    seeds: int = 1
    tasks: tuple[str, ...] = ()  # task id patterns (fnmatch); empty = all
    limit_tasks: int | None = None  # at most this many tasks per suite
    scaffold_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    concurrency: Mapping[str, int] = field(default_factory=dict)  # provider -> limit
    logprobs: bool = False
    ablations: str = ""  # "" (none) | "removed" | "replaced" | "both": one episode per shard
    reuse_baselines: bool = False  # skip baselines whose identical episode is already stored
    name: str = ""
    shard: str = ""  # "" (the whole matrix) | "i/N": only the episodes of shard i (see shard.py)

    def __post_init__(self) -> None:
        for label, values in (("suites", self.suites), ("models", self.models), ("scaffolds", self.scaffolds)):
            if not values:
                raise ConfigError(f"the run needs at least one of {label}")
            dupes = sorted({v for v in values if list(values).count(v) > 1})
            if dupes:
                raise ConfigError(f"{label} listed twice: {', '.join(dupes)}")
        if self.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {self.seeds}")
        if self.limit_tasks is not None and self.limit_tasks < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit_tasks}")
        if self.ablations not in ("", "removed", "replaced", "both"):
            raise ConfigError(f"ablations must be removed, replaced or both, got {self.ablations!r}")
        if self.shard:
            parse_shard(self.shard)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MatrixSpec:
        data = json.loads(text)
        for key in ("suites", "models", "scaffolds", "tasks"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)

    def ablation_modes(self) -> tuple[AblationMode, ...]:
        modes: dict[str, tuple[AblationMode, ...]] = {
            "": (), "removed": ("removed",), "replaced": ("replaced",), "both": ("removed", "replaced")}
        return modes[self.ablations]


@dataclass(frozen=True)
class EpisodeSpec:
    """One cell of the matrix: a task attempt to run."""

    suite: str
    task_id: str
    scaffold: str
    scaffold_hash: str
    model: str
    seed: int
    ablation: Ablation | None = None

    @property
    def key(self) -> str:
        """Stable identity of the attempt; resume skips keys already in the store."""
        base = f"{self.suite}/{self.task_id}/{self.scaffold}@{self.scaffold_hash[:12]}/{self.model}/seed{self.seed}"
        if self.ablation is None:
            return base
        return f"{base}/ablate:{self.ablation.shard}:{self.ablation.mode}"

    @property
    def baseline_key(self) -> str | None:
        if self.ablation is None:
            return None
        return EpisodeSpec(self.suite, self.task_id, self.scaffold, self.scaffold_hash,
                           self.model, self.seed).key


def select_tasks(suite: Suite, patterns: Iterable[str], limit: int | None) -> list[Task]:
    """The suite's tasks matching any pattern (all when none), at most ``limit``."""
    patterns = list(patterns)
    chosen = [t for t in suite.tasks if not patterns or any(fnmatch.fnmatch(t.id, p) for p in patterns)]
    return chosen[:limit] if limit else chosen


def expand(spec: MatrixSpec, suites: Mapping[str, Suite], hashes: Mapping[str, str]) -> list[EpisodeSpec]:
    """Every episode of the matrix, in a stable order (model-major, so one local model's
    weights stay loaded while its episodes run)."""
    episodes: list[EpisodeSpec] = []
    for model in spec.models:
        for suite_name in spec.suites:
            tasks = select_tasks(suites[suite_name], spec.tasks, spec.limit_tasks)
            for task in tasks:
                for scaffold in spec.scaffolds:
                    for seed in range(spec.seeds):
                        base = EpisodeSpec(suite_name, task.id, scaffold, hashes[scaffold], model, seed)
                        episodes.append(base)
                        for shard in task.shards:
                            # a shard without a declared wrong value is only removed (the
                            # replaced episode could only end in an AblationError)
                            for mode in spec.ablation_modes():
                                if mode == "replaced" and shard.replacement is None:
                                    continue
                                episodes.append(
                                    EpisodeSpec(suite_name, task.id, scaffold, hashes[scaffold],
                                                model, seed, Ablation(shard.name, mode))
                                )
    return episodes


def in_shard(spec: MatrixSpec, episodes: list[EpisodeSpec]) -> list[EpisodeSpec]:
    """The episodes of the spec's shard (all of them when the spec is not sharded). An ablated
    episode goes by its baseline's key: a task's ablations land in the shard of its baseline,
    so each shard's run can compare them."""
    if not spec.shard:
        return episodes
    shard = parse_shard(spec.shard)
    return [e for e in episodes if shard.holds(e.baseline_key or e.key)]
