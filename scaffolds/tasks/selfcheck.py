"""A suite's dry run without a model: every task and every ablation instantiated, every
reference judged by the task's own check, every ``implied_answer`` checked where it can be
(``shardscope suites check``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from shardscope.config.errors import ShardscopeError
from shardscope.scaffolds.tasks.checks import answers_implied, check
from shardscope.scaffolds.tasks.model import Ablation, AblationMode, Shard, TaskInstance
from shardscope.scaffolds.tasks.reference import apply_reference_fix
from shardscope.scaffolds.tasks.suite import Suite, Task


@dataclass
class SuiteReport:
    """What the dry run of one suite found: counts, and one line per problem."""

    suite: str
    tasks: int = 0
    ablations: int = 0
    references: int = 0
    problems: list[str] = field(default_factory=list)


def check_suite(suite: Suite) -> SuiteReport:
    """Instantiate each task and each of its ablations, and judge each reference."""
    report = SuiteReport(suite.name)
    with tempfile.TemporaryDirectory(prefix="shardscope-check-") as tmp:
        for number, task in enumerate(suite.tasks):
            report.tasks += 1
            root = Path(tmp) / f"{number}"
            report.problems += [f"task {task.id!r}: {p}" for p in _task_problems(task, root, report)]
    return report


def _task_problems(task: Task, root: Path, report: SuiteReport) -> Iterator[str]:
    try:
        instance = task.instantiate(root / "baseline")
    except (ShardscopeError, OSError, ValueError) as exc:
        yield f"cannot be instantiated: {exc}"
        return
    yield from _reference_problems(task, instance, report)
    for shard in task.shards:
        for mode in get_args(AblationMode):
            report.ablations += 1
            try:
                ablated = task.instantiate(root / f"{shard.name}-{mode}", Ablation(shard.name, mode))
            except (ShardscopeError, OSError, ValueError) as exc:
                yield f"shard {shard.name!r} {mode}: {exc}"
                continue
            if mode == "replaced" and shard.implied_answer is not None:
                yield from _implied_problems(task, shard, instance, ablated)


def _reference_problems(task: Task, instance: TaskInstance, report: SuiteReport) -> Iterator[str]:
    if task.check.type == "tests_pass":
        report.references += 1
        if check(task, "done", instance).outcome == "success":
            yield "the planted bug breaks no test (its tests pass before the fix)"
        apply_reference_fix(task, instance)
        fixed = check(task, "done", instance)
        if fixed.outcome != "success":
            yield f"the reference fix fails its own tests: {fixed.detail}"
        return
    if task.reference is None and task.reference_sql is None:
        yield "no reference or reference_sql: nothing says the task can be solved"
    if task.reference is not None:
        report.references += 1
        result = check(task, task.reference, instance)
        if result.outcome != "success":
            yield f"reference {task.reference!r} fails its own check: {result.detail}"
    if task.reference_sql is not None:
        report.references += 1
        yield from _reference_sql_problems(task, instance)


def _implied_problems(task: Task, shard: Shard, instance: TaskInstance,
                      ablated: TaskInstance) -> Iterator[str]:
    """A replacement's ``implied_answer`` must not be the original answer (the task's own
    check would pass it: it implies nothing), and where the task has a ``reference_sql`` it
    must be what that query answers on the replaced dataset."""
    implied = str(shard.implied_answer)
    if task.check.type == "tests_pass":
        yield f"shard {shard.name!r}: implied_answer on a tests_pass task: there is no answer to imply"
        return
    if check(task, implied, instance).outcome == "success":
        yield (f"shard {shard.name!r}: implied_answer {implied!r} passes the task's own check: "
               "the replacement would imply the original answer")
    if task.reference_sql is None or ablated.tool_context.dataset_path is None:
        return
    cell, error = _reference_cell(task, ablated)
    if error is None and not answers_implied(task.check, implied, cell):
        yield (f"shard {shard.name!r}: implied_answer {implied!r}, but reference_sql answers "
               f"{cell!r} on the replaced dataset")


def _reference_cell(task: Task, instance: TaskInstance) -> tuple[str | None, str | None]:
    """The first cell ``task.reference_sql`` returns on ``instance``'s dataset, or why none."""
    from shardscope.scaffolds.tools import default_registry

    result = default_registry().get("sql").run({"query": task.reference_sql}, instance.tool_context)
    if not result.ok:
        return None, f"reference_sql cannot run: {result.error_message}"
    lines = result.output.splitlines()
    if len(lines) <= 2:
        return None, f"reference_sql returns no rows: {task.reference_sql!r}"
    return lines[1].split(" | ")[0], None


def _reference_sql_problems(task: Task, instance: TaskInstance) -> Iterator[str]:
    if instance.tool_context.dataset_path is None:
        yield "reference_sql given but the suite has no dataset"
        return
    cell, error = _reference_cell(task, instance)
    if cell is None:
        yield str(error)
        return
    judged = check(task, cell, instance)
    if judged.outcome != "success":
        yield f"reference_sql's answer {cell!r} fails the check: {judged.detail}"
