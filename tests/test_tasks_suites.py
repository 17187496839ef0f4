"""Every shipped suite loads, its reference answers pass their own checks, and every
shard's ablation (removed or replaced) really changes what the model can learn."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pytest

from shardscope.scaffolds.tasks import (
    Ablation,
    Suite,
    Task,
    TaskInstance,
    apply_reference_fix,
    check,
    load_suites,
)
from shardscope.scaffolds.tools import default_registry

MINIMUM_TASKS = {"arithmetic": 12, "docs": 10, "village": 10, "bugfix": 8, "planted": 20}
TOOL_FREE = {"planted"}  # the positive control: the answer is in the prompt
SUITES = load_suites()
TASKS = [pytest.param(suite, task, id=task.id) for suite in SUITES.values() for task in suite.tasks]
SHARDS = [
    pytest.param(task, shard.name, mode, id=f"{task.id}-{shard.name}-{mode}")
    for suite in SUITES.values()
    for task in suite.tasks
    for shard in task.shards
    for mode in ("removed", "replaced")
]


def test_the_shipped_suites_are_all_there() -> None:
    assert set(MINIMUM_TASKS) <= set(SUITES)
    for name, minimum in MINIMUM_TASKS.items():
        assert len(SUITES[name].tasks) >= minimum, name
    assert sum(len(s.tasks) for s in SUITES.values()) >= 40


def test_task_ids_are_unique_everywhere() -> None:
    ids = [task.id for suite in SUITES.values() for task in suite.tasks]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", ["arithmetic", "village", "docs", "bugfix"])
def test_each_suite_starts_with_easy_tasks(name: str) -> None:
    """The demo runs the first tasks of a suite with tiny models."""
    first = SUITES[name].tasks[:3] if name != "bugfix" else SUITES[name].tasks[:2]
    assert all(task.metadata.get("difficulty") == "easy" for task in first)


def test_every_task_uses_only_known_tools_and_declares_shards() -> None:
    known = set(default_registry().names())
    for suite in SUITES.values():
        for task in suite.tasks:
            assert task.shards and set(task.tools) <= known, task.id
            assert task.tools or suite.name in TOOL_FREE, task.id


def _fingerprint(instance: TaskInstance) -> dict[str, Any]:
    """Everything the model could learn from an instance."""
    ctx = instance.tool_context
    files = {
        p.relative_to(ctx.workdir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ctx.workdir.rglob("*"))
        if p.is_file()
    }
    return {
        "prompt": instance.prompt,
        "tools": instance.tools,
        "corpus": dict(ctx.corpus),
        "overrides": dict(ctx.tool_overrides),
        "files": files,
        "dataset": _dump(ctx.dataset_path) if ctx.dataset_path else None,
    }


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY 1"
            ).fetchall()
        ]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    finally:
        con.close()


def _first_cell_via_tool(instance: TaskInstance, query: str) -> str:
    """The reference query run through the real sql tool, as a model would."""
    result = default_registry().get("sql").run({"query": query}, instance.tool_context)
    assert result.ok, result.error_message
    lines = result.output.splitlines()
    return lines[1].split(" | ")[0] if len(lines) > 2 else "(no rows)"


@pytest.mark.parametrize(("suite", "task"), TASKS)
def test_reference_answer_passes_its_own_check(suite: Suite, task: Task, tmp_path: Path) -> None:
    instance = task.instantiate(tmp_path)
    assert instance.shards == tuple(s.name for s in task.shards)
    if task.check.type == "tests_pass":
        broken = check(task, "done", instance)
        assert broken.outcome == "failure" and broken.score < 1.0, "the planted bug breaks no test"
        apply_reference_fix(task, instance)
        fixed = check(task, "done", instance)
        assert (fixed.outcome, fixed.score) == ("success", 1.0), fixed.detail
        return
    result = check(task, task.reference, instance)
    assert (result.outcome, result.score) == ("success", 1.0), result.detail
    assert check(task, None, instance).outcome == "failure"
    if task.reference_sql:
        cell = _first_cell_via_tool(instance, task.reference_sql)
        assert check(task, cell, instance).outcome == "success", (cell, task.reference)


@pytest.mark.parametrize(("task", "shard", "mode"), SHARDS)
def test_every_ablation_changes_the_world(
    task: Task, shard: str, mode: str, tmp_path: Path
) -> None:
    baseline = task.instantiate(tmp_path / "baseline")
    ablated = task.instantiate(tmp_path / "ablated", Ablation(shard, mode))
    assert ablated.ablation == Ablation(shard, mode)
    assert (shard in ablated.shards) == (mode == "replaced")
    before, after = _fingerprint(baseline), _fingerprint(ablated)
    assert before != after
    declared = task.shard(shard)
    if declared.kind == "fact":
        assert declared.content in before["prompt"] and declared.content not in after["prompt"]
        if mode == "replaced":
            assert str(declared.replacement) in after["prompt"]
    if declared.kind == "rows" and task.reference_sql:
        cell = _first_cell_via_tool(ablated, task.reference_sql)
        assert check(task, cell, ablated).outcome == "failure", f"answer still derivable: {cell}"
    if declared.kind == "document":
        assert before["corpus"][declared.params["doc"]] != after["corpus"].get(
            declared.params["doc"]
        )
    if declared.kind == "file":
        assert before["files"][declared.params["path"]] != after["files"].get(
            declared.params["path"]
        )
