"""Shard influence pooled over tasks (influence.pooled_influence): a shard name declared by
several tasks is one cell per model · scaffold x mode, its interval clustered by task. On the
dependence store (real runner, scripted readers: ``uses-a`` answers from a, ``uses-b`` from
b, 6 tasks x 3 seeds) each reader's own shard has a drop whose interval excludes 0 and the
other's interval holds 0; ``compare`` prints the pooled table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from shardscope.analysis.compare import ablation_detail, compare
from shardscope.analysis.influence import pooled_influence
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx
from tests.analysis_fixtures import dependence_store  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[1]
TITLE = "shard influence pooled over tasks"


def _cell(pooled: pd.DataFrame, model: str, shard: str, mode: str) -> pd.Series:
    found = pooled[(pooled.model == model) & (pooled["shard"] == shard) & (pooled["mode"] == mode)]
    assert len(found) == 1, found
    return found.iloc[0]


def test_each_reader_depends_on_its_own_shard_over_the_tasks(dependence_store: Path) -> None:  # noqa: F811
    influence, pairs = ablation_detail(Store(dependence_store), Selection())
    pooled = pooled_influence(pairs)
    assert len(pooled) == 2 * 2 * 2  # models x shards x modes
    assert (pooled.tasks == fx.DEPENDENCE_TASKS).all()
    assert (pooled.n == fx.DEPENDENCE_TASKS * 3).all()  # tasks x seeds
    for model, own, other in (("uses-a", "a", "b"), ("uses-b", "b", "a")):
        for mode in ("removed", "replaced"):
            mine, theirs = _cell(pooled, model, own, mode), _cell(pooled, model, other, mode)
            assert mine.success_drop > 0.5 and mine.ci_low > 0, mine
            assert theirs.ci_low <= 0 <= theirs.ci_high, theirs
    # each pooled drop lies within its tasks' cells, and every interval within [-1, 1]
    cells = influence.groupby(["model", "shard", "mode"]).success_drop
    low, high = cells.min(), cells.max()
    for r in pooled.itertuples():
        key = (r.model, r.shard, r.mode)
        assert low[key] <= r.success_drop <= high[key]
        assert -1 <= r.ci_low <= r.success_drop <= r.ci_high <= 1, r
    assert compare(Store(dependence_store), Selection(), clusters=False).pooled_influence.equals(pooled)


def test_compare_prints_the_pooled_table(dependence_store: Path) -> None:  # noqa: F811
    out = subprocess.run([sys.executable, "-m", "shardscope", "compare", "--db",
                          str(dependence_store), "--no-clusters"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    after = out.stdout[out.stdout.index(TITLE):]
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in after.splitlines()
            if line.startswith("│ toy/")]
    assert len(rows) == 8 and all(r[3] == str(fx.DEPENDENCE_TASKS) for r in rows), rows
    assert ["toy/a", "removed", "uses-a · react-tools", "6", "18", "100%", "[100%, 100%]"] in [
        r[:7] for r in rows]
    assert all(float(r[6].strip("[]").split(", ")[1].rstrip("%")) <= 100 for r in rows)


def test_a_shard_name_on_one_task_is_not_pooled() -> None:
    pairs = pd.DataFrame([{"suite": "s", "task_id": "t0", "shard": "x", "model": "m",
                           "scaffold": "react-tools", "mode": "removed", "base_success": 1.0,
                           "ablated_success": 0.0, "base_score": 1.0, "ablated_score": 0.0,
                           "trajectory_change": 0.0, "excluded": None}])
    assert pooled_influence(pairs).empty
