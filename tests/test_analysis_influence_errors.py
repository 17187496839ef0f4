"""Outcome influence leaves out pairs whose baseline or ablated episode ended in the ``error``
outcome (issue 14), and says how many. Stores recorded before commit bc41af1 hold
AblationError episodes; a backend that fails after its retries ends an episode the same way.
Here a real runner (scripted model, real OpenTelemetry SDK, real DuckDB) records them: the
model reads "a is N" and answers N + 3; its backend raises when a was removed (every ablated
episode of that shard ends in an error) and on task t0's baseline prompt."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from shardscope.analysis.compare import ablation_detail
from shardscope.analysis.influence import excluded_note, shard_influence
from shardscope.commands.compare import print_influence
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx

TASKS = 3
SPEC = MatrixSpec(suites=("toy",), models=("flaky",), scaffolds=("react-tools",), seeds=1,
                  ablations="both", name="errors")


def _user(messages: Sequence[Any]) -> str:
    return next(m.content for m in messages if m.role == "user")


def flaky(messages: Sequence[Any], tools: Any, config: Any) -> str:
    prompt = _user(messages)
    found = re.search(r"\ba is (\d+)", prompt)
    if found is None:
        raise RuntimeError("backend down after retries")  # an infrastructure error
    if "Task t0:" in prompt and "a is 2." in prompt and "b is 3." in prompt:
        raise RuntimeError("backend down after retries")  # t0's baseline only
    return f"Final Answer: {int(found.group(1)) + 3}"


@pytest.fixture(scope="module")
def error_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx._build(tmp_path_factory.mktemp("errors") / "errors.duckdb", {"flaky": flaky}, SPEC,
                     TASKS)


def test_error_pairs_are_left_out_of_influence_and_counted(error_store: Path) -> None:
    store = Store(error_store)
    outcomes = read_frame(store, "SELECT task_id, ablation_shard, ablation_mode, outcome "
                                 "FROM episodes")
    errors = outcomes[outcomes.outcome == "error"]
    # what the store holds: t0's baseline, and every episode with a removed
    assert len(errors[errors.ablation_shard.isna()]) == 1
    assert len(errors[(errors.ablation_shard == "a") & (errors.ablation_mode == "removed")]) == TASKS

    influence, pairs = ablation_detail(store, Selection())
    error_pair = (pairs.outcome == "error") | (pairs.base_outcome == "error")
    assert error_pair.sum() == TASKS + 3  # a removed in each task, and t0's other 3 ablations
    assert pairs.excluded.notna().eq(error_pair).all()
    assert set(pairs.excluded.dropna()) == {"ablated episode ended in an error",
                                            "baseline episode ended in an error",
                                            "baseline and ablated episodes ended in an error"}

    cell = influence.set_index(["task_id", "shard", "mode"])
    for task in range(1, TASKS):
        removed = cell.loc[(f"t{task}", "a", "removed")]
        # before: an error counted as a success drop of 1 (base success, ablated not)
        assert removed.n == 0 and removed.excluded_errors == 1 and np.isnan(removed.success_drop)
        replaced = cell.loc[(f"t{task}", "a", "replaced")]  # a is 7: answers 10, a real failure
        assert replaced.n == 1 and replaced.excluded_errors == 0 and replaced.success_drop == 1.0
        kept = cell.loc[(f"t{task}", "b", "removed")]  # b is not read: no drop
        assert kept.n == 1 and kept.excluded_errors == 0 and kept.success_drop == 0.0
    for shard, mode in (("a", "removed"), ("a", "replaced"), ("b", "removed"), ("b", "replaced")):
        base_error = cell.loc[("t0", shard, mode)]
        assert base_error.n == 0 and base_error.excluded_errors == 1

    pooled = shard_influence(pairs, by=("suite", "shard", "model", "scaffold", "mode"))
    pooled = pooled.set_index(["shard", "mode"])
    assert pooled.loc[("a", "removed")].n == 0 and pooled.loc[("a", "removed")].excluded_errors == TASKS
    assert pooled.loc[("a", "replaced")].n == TASKS - 1
    assert pooled.loc[("a", "replaced")].success_drop == 1.0

    note = excluded_note(influence)
    assert note is not None and note.startswith(f"{TASKS + 3} ablation pair(s) in {TASKS + 3} cell(s)")
    console = Console(record=True, width=200)
    print_influence(console, influence)
    assert note in console.export_text()


def test_no_error_no_note(dependence_store: Path) -> None:
    influence, pairs = ablation_detail(Store(dependence_store), Selection())
    assert pairs.excluded.isna().all() and (influence.excluded_errors == 0).all()
    assert excluded_note(influence) is None


def test_a_baseline_rerun_that_errored_does_not_replace_one_that_measured(tmp_path: Path) -> None:
    # the baselines are run again (another run, no ablation) while the backend is down: each
    # task's latest baseline is then an error, and an earlier one measured the model; pairs
    # use the latest baseline that measured something, not the error (which excluded them all)
    from shardscope.config.settings import Settings
    from shardscope.scaffolds.backends.scripted import ScriptedBackend
    from shardscope.scaffolds.backends.traced import TracedModel
    from shardscope.scaffolds.runner.runner import Runner
    from shardscope.tracer.setup import setup_tracing

    down = {"now": False}

    def reader(messages: Sequence[Any], tools: Any, config: Any) -> str:
        found = re.search(r"\ba is (\d+)", _user(messages))
        if down["now"]:
            raise RuntimeError("backend down after retries")
        return f"Final Answer: {int(found.group(1)) + 3}" if found else "Final Answer: unknown"

    db = tmp_path / "rerun.duckdb"
    tracing = setup_tracing(Settings(db=db, flush_interval=0.1), strict=True)
    try:
        model = TracedModel(ScriptedBackend(model="flaky", policy=reader), tracing, model_id="flaky")
        for spec in (SPEC, MatrixSpec(suites=("toy",), models=("flaky",), scaffolds=("react-tools",),
                                      name="baselines again")):
            asyncio.run(Runner(tracing, fx._resources({"flaky": model}, TASKS), progress=False).run(spec))
            down["now"] = True
    finally:
        tracing.shutdown()
    store = Store(db)
    baselines = read_frame(store, "SELECT outcome FROM episodes WHERE ablation_shard IS NULL")
    assert sorted(baselines.outcome) == ["error"] * TASKS + ["success"] * TASKS

    influence, pairs = ablation_detail(store, Selection())
    assert len(pairs) == 4 * TASKS and (pairs.base_outcome == "success").all()
    assert pairs.excluded.isna().all() and (influence.excluded_errors == 0).all()
    removed = influence.set_index(["task_id", "shard", "mode"]).loc[("t1", "a", "removed")]
    assert removed.n == 1 and removed.success_drop == 1.0
