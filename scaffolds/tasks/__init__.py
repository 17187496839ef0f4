"""Task suites: tasks with named shards, loaded from hand-written TOML files (docs/tasks.md).

``load_suites()`` reads ``config/suites/`` (plus a user directory); ``task.instantiate(workdir,
ablation)`` builds one episode's world with a shard removed or replaced; ``check(task,
answer, instance)`` judges the result.
"""

from shardscope.scaffolds.tasks.checks import check
from shardscope.scaffolds.tasks.errors import (
    AblationError,
    SuiteError,
    UnknownSuiteError,
    UnknownTaskError,
)
from shardscope.scaffolds.tasks.loader import SUITES_DIR, get_suite, load_suite, load_suites
from shardscope.scaffolds.tasks.model import (
    ABLATION_MODES,
    SHARD_KINDS,
    Ablation,
    Check,
    CheckResult,
    Edit,
    Shard,
    TaskInstance,
    World,
)
from shardscope.scaffolds.tasks.reference import apply_reference_fix
from shardscope.scaffolds.tasks.suite import Suite, Task

__all__ = [
    "ABLATION_MODES",
    "SHARD_KINDS",
    "SUITES_DIR",
    "Ablation",
    "AblationError",
    "Check",
    "CheckResult",
    "Edit",
    "Shard",
    "Suite",
    "SuiteError",
    "Task",
    "TaskInstance",
    "UnknownSuiteError",
    "UnknownTaskError",
    "World",
    "apply_reference_fix",
    "check",
    "get_suite",
    "load_suite",
    "load_suites",
]
