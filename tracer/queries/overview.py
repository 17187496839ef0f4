"""The Overview's data: the episode cube, pre-aggregated per run, suite, task, scaffold,
model, outcome and ablation, and a cache of per-run cubes for live runs. The numbers the
page shows are functions over the cube in :mod:`shardscope.analysis.summaries`.

Every column comes from the typed rows written at ingest (tracer/typed.py): the episodes'
own row and their partial sums, no span attribute is parsed. Cubes are still per run and
cached while the run is unchanged (a live run costs only its own slice).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd

from shardscope.tracer.queries.frames import query_frame
from shardscope.tracer.queries.runs import StoreSummary
from shardscope.tracer.schema import EPISODE_ROW_SQL
from shardscope.tracer.store import Store

# The episodes' own columns come from the episode row (not the view, which would also sum
# every episode's tool and step counts); tokens and cost from the episode's partial sums.
CUBE_SQL = """
WITH eps AS (
    SELECT episode_id, run_id, suite, task_id, scaffold, model, outcome, ablation_shard, duration_s
    FROM ({row}) WHERE {runs}),
{calls}
SELECT run_id, suite, task_id, scaffold, model, coalesce(outcome, 'unknown') AS outcome,
       ablation_shard IS NOT NULL AS ablated, count(*) AS episodes,
       CAST(coalesce(sum(c.tokens), 0) AS BIGINT) AS tokens, sum(duration_s) AS seconds,
       sum(c.cost_usd) AS cost_usd, count(c.cost_usd) AS priced
FROM eps LEFT JOIN calls c USING (episode_id) GROUP BY ALL
ORDER BY run_id, suite, task_id, scaffold, model, outcome, ablated
"""
# The rows are in the order of their cell (one cell per row), so a cube read twice is the same
# frame. Its float sums (seconds, cost) still add up in whatever order DuckDB's threads meet
# the episodes, so their last bits may differ between reads: summing in a fixed order
# (``sum(x ORDER BY episode_id)``, or sorted lists) made the cube ~1.5-2.5x as slow on the
# 1M-span bench store.
# An episode's tokens and cost: its partial sums (typed at ingest, a few rows per episode).
CALLS_SQL = """
calls AS (
    SELECT episode_id, CAST(sum(input_tokens + output_tokens) AS BIGINT) AS tokens,
           sum(cost_usd) AS cost_usd
    FROM episode_sums WHERE episode_id IN (SELECT episode_id FROM eps) GROUP BY episode_id)"""


def _run_condition(runs: Sequence[str | None] | None) -> tuple[str, list[Any]]:
    if runs is None:
        return "TRUE", []
    named = [r for r in runs if r is not None]
    clauses = [f"run_id IN ({', '.join('?' for _ in named)})"] if named else []
    if None in runs:
        clauses.append("run_id IS NULL")
    return f"({' OR '.join(clauses) or 'FALSE'})", named


def episode_cube(store: Store, runs: Sequence[str | None] | None = None) -> pd.DataFrame:
    """Episodes pre-aggregated by run, suite, task, scaffold, model, outcome and ablation, with
    episodes, tokens, seconds and cost per cell; ``runs`` limits it (None in it: no run id).

    Every overview number is a sum over this (a few thousand rows for 20,000 episodes), so
    filters and groupings cost nothing more once it is loaded.
    """
    condition, params = _run_condition(runs)
    with store.reader() as con:
        return query_frame(con, CUBE_SQL.format(runs=condition, row=EPISODE_ROW_SQL,
                                                calls=CALLS_SQL), params)


class CubeCache:
    """Per-run cubes of one store, reused while their run is unchanged (thread-safe).

    A run's cube changes only when the run records an episode, so its stamp (completed
    episodes, last activity, status from the cheap summary) decides; episodes with no run id
    are recomputed whenever the store changes. A live run thus costs only its own slice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cubes: dict[tuple[str, str | None], tuple[Any, pd.DataFrame]] = {}
        self.computed: list[str | None] = []  # runs computed by the last call (for tests)

    def cube(self, store: Store, summary: StoreSummary, version: str,
             runs: Sequence[str | None] | None = None) -> pd.DataFrame:
        stamps: dict[str | None, Any] = {
            r.run_id: (r.completed, str(r.last_activity_at), r.status) for r in summary.runs}
        stamps[None] = version
        wanted = list(stamps) if runs is None else [r for r in runs if r in stamps]
        with self._lock:
            stale = [r for r in wanted if self._cubes.get((str(store.path), r), (None,))[0] != stamps[r]]
            if stale:
                fresh = episode_cube(store, stale)
                for run in stale:
                    rows = fresh[fresh["run_id"].isna()] if run is None else fresh[fresh["run_id"] == run]
                    self._cubes[(str(store.path), run)] = (stamps[run], rows.reset_index(drop=True))
            self.computed = stale
            parts = [self._cubes[(str(store.path), r)][1] for r in wanted]
        return pd.concat(parts, ignore_index=True) if parts else episode_cube_empty()


def episode_cube_empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["run_id", "suite", "task_id", "scaffold", "model", "outcome",
                                 "ablated", "episodes", "tokens", "seconds", "cost_usd", "priced"])
