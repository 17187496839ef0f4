"""Outcome influence counts byte-identical repeated pairs once (issue 14): a task whose seeds
repeat byte for byte (temperature 0) gives a cell no interval, not a zero-width one counted
as significant, while a dependence seen across tasks stays significant. On the planted
dependence store (tests/analysis_fixtures.py: scripted uses-a reads shard a, uses-b reads b,
each task run with 3 seeds that repeat except on an unlucky seed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shardscope.analysis.compare import ablation_detail
from shardscope.analysis.influence import shard_influence
from shardscope.analysis.stats import REPEAT_KEY, estimate
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx


def _significant(rows: pd.DataFrame) -> pd.Series:
    return (rows.ci_low > 0) | (rows.ci_high < 0)  # as analysis.agreement counts it


def test_identical_repeats_make_no_significant_cell(dependence_store: Path) -> None:
    influence, pairs = ablation_detail(Store(dependence_store), Selection())
    cells = influence[(influence.model == "uses-a") & (influence["shard"] == "a")]
    identical = cells[cells.identical_repeats == 2]  # all 3 pairs the same bytes
    assert len(identical) >= fx.DEPENDENCE_TASKS  # most task x mode cells
    assert (identical.success_drop == 1.0).all() and identical.ci_low.isna().all()
    assert not _significant(identical).any()
    # without the fingerprint the same values gave SE 0 and a "significant" [1, 1]
    task = identical.iloc[0]
    cell = pairs[(pairs.model == "uses-a") & (pairs["shard"] == "a")
                 & (pairs.task_id == task.task_id) & (pairs["mode"] == task["mode"])]
    assert cell[REPEAT_KEY].nunique() == 1
    drops = (cell.base_success - cell.ablated_success).to_numpy()
    naive = estimate(drops, cell.task_id.to_numpy())
    assert (naive.se, naive.ci_low, naive.ci_high) == (0.0, 1.0, 1.0)


def test_a_dependence_across_tasks_stays_significant(dependence_store: Path) -> None:
    _, pairs = ablation_detail(Store(dependence_store), Selection())
    pooled = shard_influence(pairs, by=("suite", "shard", "model", "scaffold", "mode"))
    pooled = pooled.set_index(["model", "shard", "mode"])
    for model, own, other in (("uses-a", "a", "b"), ("uses-b", "b", "a")):
        for mode in ("removed", "replaced"):
            row = pooled.loc[(model, own, mode)]
            assert row.tasks == fx.DEPENDENCE_TASKS and row.ci_low > 0.5, row
            assert not _significant(pooled.loc[[(model, other, mode)]]).any()
