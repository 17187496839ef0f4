"""Runs and their episodes: every run's progress (the sidebar's ``store_summary``), what
``shardscope run --resume`` and baseline reuse skip, and a run's episodes for the summary
the CLI prints at the end of a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from shardscope.tracer.queries.frames import aggregate_row, read_frame
from shardscope.tracer.store import Store


@dataclass(frozen=True)
class RunProgress:
    """One row of the ``runs`` view: how far a matrix run has got."""

    run_id: str
    name: str | None
    status: str  # running | stale (no end, writer silent: killed?) | finished | interrupted | failed
    planned: int | None
    completed: int
    started_at: Any = None
    last_activity_at: Any = None

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.completed / self.planned) if self.planned else None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.run_id})" if self.name else self.run_id


@dataclass(frozen=True)
class StoreSummary:
    """What the sidebar shows. ``state``: missing (no file), empty (no span yet) or ready."""

    path: str
    state: str
    spans: int = 0
    episodes: int = 0
    runs: tuple[RunProgress, ...] = ()

    @property
    def latest_run(self) -> RunProgress | None:
        return self.runs[0] if self.runs else None

    @property
    def running(self) -> tuple[RunProgress, ...]:
        return tuple(r for r in self.runs if r.status == "running")

    @property
    def stale(self) -> tuple[RunProgress, ...]:
        """Runs that never ended and whose writer went silent: killed, resumable."""
        return tuple(r for r in self.runs if r.status == "stale")


# Without the outcome counts the runs view never reads an episode's attributes: ~5x cheaper
# on a cold store (outcomes per run come from the overview's cube instead).
RUNS_SQL = """
SELECT run_id, name, status, planned_episodes, completed_episodes, started_at, last_activity_at
FROM runs ORDER BY started_at DESC, run_id
"""


def _runs(con: duckdb.DuckDBPyConnection) -> tuple[RunProgress, ...]:
    return tuple(
        RunProgress(r[0], r[1], r[2], None if r[3] is None else int(r[3]), int(r[4]), r[5], r[6])
        for r in con.execute(RUNS_SQL).fetchall()
    )


def store_summary(store: Store) -> StoreSummary:
    """Counts and every run's progress (newest first, without outcome counts): the sidebar.

    A missing store is a state, not an error; reads no span attributes, so it stays cheap."""
    if not store.exists():
        return StoreSummary(str(store.path), "missing")
    with store.reader() as con:
        spans, episodes = aggregate_row(
            con, "SELECT (SELECT count(*) FROM spans), "
            "(SELECT count(*) FROM typed_episodes WHERE span_type = 'episode')")
        runs = _runs(con) if spans else ()
    return StoreSummary(str(store.path), "ready" if spans else "empty", spans, episodes, runs)


def completed_episode_keys(store: Store, run_id: str) -> set[str]:
    """Keys of the run's episodes already in the store (what ``--resume`` skips)."""
    if not store.exists():
        return set()
    with store.reader() as con:
        rows = con.execute(
            "SELECT DISTINCT episode_key FROM episodes WHERE run_id = ? AND episode_key IS NOT NULL",
            [run_id],
        ).fetchall()
    return {r[0] for r in rows}


def error_episodes(store: Store, run_id: str) -> dict[str, str]:
    """Episode id -> key of the run's episodes that ended in an infrastructure error (outcome
    'error': a call timeout, a server error after retries), for keys with no other outcome:
    what ``--resume --retry-errors`` runs again. Model failures are not among them."""
    if not store.exists():
        return {}
    with store.reader() as con:
        rows = con.execute(
            "SELECT episode_id, episode_key FROM episodes WHERE run_id = ? AND outcome = 'error' "
            "AND episode_key IS NOT NULL AND episode_key NOT IN (SELECT episode_key FROM episodes "
            "WHERE run_id = ? AND outcome <> 'error' AND episode_key IS NOT NULL)",
            [run_id, run_id],
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def stored_baseline_keys(store: Store) -> set[str]:
    """Keys of every finished, un-ablated episode in the store, whatever its run (what an
    ablation run reuses instead of running its baselines again)."""
    if not store.exists():
        return set()
    with store.reader() as con:
        rows = con.execute(
            "SELECT DISTINCT episode_key FROM episodes WHERE episode_key IS NOT NULL "
            "AND ablation_shard IS NULL AND outcome IS NOT NULL AND outcome <> 'error'"
        ).fetchall()
    return {r[0] for r in rows}


def run_info(store: Store, run_id: str | None = None) -> dict[str, Any] | None:
    """One row of the ``runs`` view (the latest run when ``run_id`` is None), or None."""
    with store.reader() as con:
        where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        result = con.execute(
            f"SELECT run_id, name, status, planned_episodes, completed_episodes, "
            f"CAST(config AS VARCHAR) AS config, started_at FROM runs {where} "
            "ORDER BY started_at DESC LIMIT 1",
            params,
        )
        names = [d[0] for d in result.description]
        row = result.fetchone()
    return dict(zip(names, row, strict=True)) if row else None


# Spans of a run's attempts that never became an episode and were never marked abandoned:
# left behind by a process that died mid-episode (SIGKILL, a crash, a power cut).
ORPHANS_SQL = """
SELECT DISTINCT episode_id FROM spans
WHERE run_id = ? AND episode_id IS NOT NULL
  AND span_type NOT IN ('episode', 'abandoned_episode', 'run', 'run_start')
  AND episode_id NOT IN (
      SELECT episode_id FROM spans
      WHERE span_type IN ('episode', 'abandoned_episode') AND episode_id IS NOT NULL)
ORDER BY episode_id
"""


def orphan_episode_ids(store: Store, run_id: str) -> list[str]:
    """Episode ids of ``run_id`` with stored spans but neither an episode nor an abandoned
    marker: what ``--resume`` marks abandoned before it runs those tasks again."""
    if not store.exists():
        return []
    with store.reader() as con:
        return [r[0] for r in con.execute(ORPHANS_SQL, [run_id]).fetchall()]


# A run's baseline episodes, one row each, for the summary `shardscope run` prints (the
# statistics over them are shardscope.analysis.summaries.run_summary).
RUN_EPISODES_SQL = """
SELECT episode_id, model, scaffold, suite, task_id, seed, outcome, score, steps,
       input_tokens + output_tokens AS tokens, cost_usd, duration_s
FROM episodes WHERE run_id = ? AND ablation_shard IS NULL
ORDER BY model, scaffold, suite, task_id, seed, episode_id
"""


def run_episodes(store: Store, run_id: str) -> pd.DataFrame:
    """The run's baseline (un-ablated) episodes: system, task, outcome, score, steps, tokens,
    cost and time."""
    return read_frame(store, RUN_EPISODES_SQL, [run_id])


def completed_episode_cells(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's stored episodes as matrix cells, each with the scaffold hash it ran under
    (what ``--resume`` compares with the current scaffolds' hashes)."""
    if not store.exists():
        return []
    with store.reader() as con:
        result = con.execute(
            "SELECT DISTINCT suite, task_id, scaffold, scaffold_hash, model, seed, ablation_shard, "
            "ablation_mode FROM episodes WHERE run_id = ? AND episode_key IS NOT NULL", [run_id])
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def stored_baseline_cells(store: Store) -> list[dict[str, Any]]:
    """Every finished, un-ablated episode in the store as a matrix cell with its scaffold hash
    (the baselines an ablation run could reuse, whatever the hash)."""
    if not store.exists():
        return []
    with store.reader() as con:
        result = con.execute(
            "SELECT DISTINCT suite, task_id, scaffold, scaffold_hash, model, seed, ablation_shard, "
            "ablation_mode FROM episodes WHERE episode_key IS NOT NULL AND ablation_shard IS NULL "
            "AND outcome IS NOT NULL AND outcome <> 'error'")
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
