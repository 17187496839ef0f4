"""What the app shows of the store as a whole, as plain functions over a :class:`Store` (the
CLI can use them too): the summary and runs, filters, the overview's cube, the episode table
and the SQL console. One episode's trace is in :mod:`shardscope.tracer.episode_trace`.

Every function that reads opens one read-only connection under the store's shared lock,
runs its queries and closes it: nothing is held between calls, so a run writing the store is
never kept waiting for long and no reader ever meets a lock error. Each page of the app
loads through one bundle (``store_summary``, ``episode_cube``, ``episode_table``, ...); the
pure functions over the returned frames (``outcome_matrix``, ``model_summary``) hold the
statistics.

Costs on a store of 1M spans (bench/ui_load.py, fresh connection each time): reading the
``episodes`` view's JSON-derived columns (suite, task, scaffold, outcome) of all ~20k
episodes takes ~0.2 s; summing ``cost_usd`` decodes every LLM span's attributes (~0.6 s), so
cubes are per run and cached while the run is unchanged; everything else reads promoted
columns or one episode's rows, in tens of milliseconds.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from shardscope.analysis.stats import cr1_se
from shardscope.tracer.attributes import Outcome
from shardscope.tracer.queries import run_sql
from shardscope.tracer.store import Store

OUTCOMES = (Outcome.SUCCESS, Outcome.FAILURE, Outcome.PROTOCOL_ERROR, Outcome.BUDGET_EXHAUSTED,
            Outcome.ERROR)
Z95 = 1.959964


def query_frame(con: duckdb.DuckDBPyConnection, sql: str,
                params: Sequence[Any] = ()) -> pd.DataFrame:
    """One query's rows on an open connection, as a frame."""
    return con.execute(sql, list(params)).df()


def store_version(path: str | Path) -> str:
    """A cheap token that changes whenever a writer commits (size + mtime of file and WAL).

    No connection, no lock: safe to compute on every rerun to key caches and notice live runs.
    """
    parts = []
    for file in (Path(path), Path(f"{path}.wal")):
        try:
            stat = os.stat(file)
            parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
        except FileNotFoundError:
            parts.append("-")
    return "/".join(parts)


# --- store and runs ---------------------------------------------------------------------------
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
        spans, episodes = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE span_type = 'episode') FROM spans"
        ).fetchone()
        runs = _runs(con) if spans else ()
    return StoreSummary(str(store.path), "ready" if spans else "empty", spans, episodes, runs)


# --- filters ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpisodeFilter:
    """Which episodes a page shows: each non-empty field narrows (values are OR-ed within it)."""

    run_ids: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    scaffolds: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    search: str = ""  # substring of the task id, episode id, final answer or error
    ablations: bool = True  # include shard-ablation episodes

    _COLUMNS = (("run_id", "run_ids"), ("suite", "suites"), ("task_id", "tasks"),
                ("scaffold", "scaffolds"), ("model", "models"), ("outcome", "outcomes"))

    def where(self) -> tuple[str, list[Any]]:
        """A SQL condition over the ``episodes`` view, with its parameters."""
        clauses, params = ["TRUE"], []
        for column, name in self._COLUMNS:
            values = getattr(self, name)
            if values:
                clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.search.strip():
            clauses.append("concat_ws(' ', task_id, episode_id, final_answer, error) ILIKE ?")
            params.append(f"%{self.search.strip()}%")
        if not self.ablations:
            clauses.append("ablation_shard IS NULL")
        return " AND ".join(clauses), params

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        """The same filter over a frame with those columns (``search`` is not applied)."""
        keep = pd.Series(True, index=frame.index)
        for column, name in self._COLUMNS:
            values = getattr(self, name)
            if values and column in frame:
                keep &= frame[column].isin(values)
        if not self.ablations and "ablated" in frame:
            keep &= ~frame["ablated"].astype(bool)
        return keep


@dataclass(frozen=True)
class Facets:
    """The distinct values the filter widgets offer."""

    run_ids: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    scaffolds: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()


def facets_of(frame: pd.DataFrame) -> Facets:
    def values(column: str) -> tuple[str, ...]:
        return tuple(sorted(str(v) for v in frame[column].dropna().unique()))

    known = values("outcome")
    outcomes = tuple(o for o in OUTCOMES if o in known) + tuple(o for o in known if o not in OUTCOMES)
    return Facets(values("run_id"), values("suite"), values("task_id"), values("scaffold"),
                  values("model"), outcomes)


# --- overview ---------------------------------------------------------------------------------
# Tokens and cost come from the LLM calls filtered by run first: the episodes view would sum
# them over every call of the store. Cost is the one expensive column (it decodes each LLM
# span's attributes), so cubes are computed per run and a finished run's cube is reused.
CUBE_SQL = """
WITH calls AS (
    SELECT episode_id, CAST(sum(input_tokens + output_tokens) AS BIGINT) AS tokens,
           sum(cost_usd) AS cost_usd
    FROM llm_calls WHERE episode_id IS NOT NULL AND {runs} GROUP BY episode_id),
eps AS (
    SELECT episode_id, run_id, suite, task_id, scaffold, model, outcome, ablation_shard, duration_s
    FROM episodes WHERE {runs})
SELECT run_id, suite, task_id, scaffold, model, coalesce(outcome, 'unknown') AS outcome,
       ablation_shard IS NOT NULL AS ablated, count(*) AS episodes,
       CAST(coalesce(sum(c.tokens), 0) AS BIGINT) AS tokens, sum(duration_s) AS seconds,
       sum(c.cost_usd) AS cost_usd, count(c.cost_usd) AS priced
FROM eps LEFT JOIN calls c USING (episode_id) GROUP BY ALL
"""


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
        return query_frame(con, CUBE_SQL.format(runs=condition), params * 2)


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


def outcome_matrix(cube: pd.DataFrame, flt: EpisodeFilter = EpisodeFilter()) -> pd.DataFrame:
    """Per model x scaffold x task: episodes, success rate, and the count of each outcome."""
    rows = cube[flt.mask(cube)]
    keys = ["model", "scaffold", "suite", "task_id"]
    counts = rows.pivot_table(index=keys, columns="outcome", values="episodes", aggfunc="sum",
                              fill_value=0)
    counts = counts.reindex(columns=[o for o in OUTCOMES if o in counts.columns]
                            + [o for o in counts.columns if o not in OUTCOMES], fill_value=0)
    out = counts.reset_index()
    out.columns.name = None
    outcome_columns = [c for c in out.columns if c not in keys]
    out["episodes"] = out[outcome_columns].sum(axis=1).astype(int)
    successes = out.get(Outcome.SUCCESS, 0)
    out["success_rate"] = successes / out["episodes"]
    out["top_outcome"] = out[outcome_columns].idxmax(axis=1) if len(out) else []
    return out.sort_values(keys, ignore_index=True)


def clustered_se(successes: pd.Series, episodes: pd.Series) -> float:
    """Standard error of a success rate whose episodes come in clusters (here: tasks).

    Each element is one cluster's successes and episode count. Episodes of one task are not
    independent (seeds repeat the same task), so the cluster-robust (CR1) estimator is used:
    sqrt(C/(C-1) * sum_c (s_c - n_c p)^2) / N. With a single cluster it falls back to the
    binomial sqrt(p(1-p)/(N-1)).
    """
    n = float(episodes.sum())
    if n == 0:
        return math.nan
    p = float(successes.sum()) / n
    present = episodes > 0
    if int(present.sum()) < 2:
        return math.sqrt(p * (1 - p) / max(n - 1, 1))
    return cr1_se((successes - episodes * p)[present].to_numpy(dtype=float), n)


def model_summary(cube: pd.DataFrame, flt: EpisodeFilter = EpisodeFilter(),
                  by: Sequence[str] = ("model",)) -> pd.DataFrame:
    """Per group: episodes, success rate with its clustered SE and 95% interval, tokens,
    cost and time (totals and per episode), and the count of each outcome."""
    rows = cube[flt.mask(cube)].copy()
    rows["successes"] = rows["episodes"].where(rows["outcome"] == Outcome.SUCCESS, 0)
    records = []
    for key, group in rows.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        tasks = group.groupby(["suite", "task_id"], dropna=False)[["successes", "episodes"]].sum()
        n = int(group["episodes"].sum())
        rate = float(group["successes"].sum()) / n if n else math.nan
        se = clustered_se(tasks["successes"], tasks["episodes"])
        cost = pd.to_numeric(group["cost_usd"]).sum(min_count=1)
        outcome_counts = group.groupby("outcome")["episodes"].sum()
        records.append({
            **dict(zip(by, key, strict=True)),
            "episodes": n, "tasks": len(tasks), "success_rate": rate, "success_se": se,
            "ci_low": max(0.0, rate - Z95 * se), "ci_high": min(1.0, rate + Z95 * se),
            "tokens": int(group["tokens"].sum()), "tokens_per_episode": group["tokens"].sum() / n,
            "cost_usd": float(cost),  # NaN when no episode of the group has a price
            "priced_episodes": int(group["priced"].sum()),
            "seconds": float(group["seconds"].sum()), "seconds_per_episode": group["seconds"].sum() / n,
            **{o: int(outcome_counts.get(o, 0)) for o in OUTCOMES},
        })
    columns = [*by, "episodes", "tasks", "success_rate", "success_se", "ci_low", "ci_high", "tokens",
               "tokens_per_episode", "cost_usd", "priced_episodes", "seconds",
               "seconds_per_episode", *OUTCOMES]
    return pd.DataFrame.from_records(records, columns=columns)


def run_outcomes(cube: pd.DataFrame) -> pd.DataFrame:
    """Per run: episodes and the count of each outcome (for progress next to the runs)."""
    if cube.empty:
        return pd.DataFrame(columns=["run_id", "episodes", *OUTCOMES])
    table = cube.pivot_table(index="run_id", columns="outcome", values="episodes", aggfunc="sum",
                             fill_value=0).reindex(columns=list(OUTCOMES), fill_value=0)
    table.insert(0, "episodes", table.sum(axis=1))
    table.columns.name = None
    return table.reset_index()


# --- runs page: the episode table -------------------------------------------------------------
EPISODE_COLUMNS = ("episode_id", "run_id", "suite", "task_id", "scaffold", "model", "seed",
                   "outcome", "score", "steps", "llm_calls", "tool_calls", "tokens", "cost_usd",
                   "duration_s", "started_at", "error", "ablation_shard", "ablation_mode")
SORTS = {"started_at": "started_at", "duration_s": "duration_s", "tokens": "tokens",
         "steps": "steps", "model": "model", "task_id": "task_id", "suite": "suite",
         "scaffold": "scaffold", "seed": "seed", "outcome": "outcome", "score": "score",
         "cost_usd": "cost_usd"}
_EPISODE_SELECT = ", ".join(
    "input_tokens + output_tokens AS tokens" if c == "tokens" else c
    for c in EPISODE_COLUMNS if c != "cost_usd"
)


@dataclass(frozen=True)
class EpisodePage:
    rows: pd.DataFrame
    total: int  # episodes matching the filter (rows holds at most `limit` of them)
    limit: int
    offset: int = 0
    facets: Facets | None = None  # every value of each filter column, when asked for


FACETS_SQL = "SELECT DISTINCT run_id, suite, task_id, scaffold, model, outcome FROM episodes"


def episode_table(store: Store, flt: EpisodeFilter = EpisodeFilter(), *, sort: str = "started_at",
                  descending: bool = True, limit: int = 500, offset: int = 0,
                  with_facets: bool = False) -> EpisodePage:
    """One page of the filtered, sorted episode table and the number of matching episodes
    (and, ``with_facets``, the values the filters offer), through one connection."""
    if sort not in SORTS:
        raise ValueError(f"cannot sort episodes by {sort!r}; choose from {', '.join(SORTS)}")
    with store.reader() as con:
        found = facets_of(query_frame(con, FACETS_SQL)) if with_facets else None
        rows, total = episode_rows(con, flt, sort, descending, limit, offset)
    return EpisodePage(rows, total, limit, offset, found)


def episode_rows(con: duckdb.DuckDBPyConnection, flt: EpisodeFilter, sort: str, descending: bool,
                 limit: int, offset: int, *, count: bool = True) -> tuple[pd.DataFrame, int]:
    """One sorted page of episode rows on an open connection, and the number matching
    (-1 without ``count``)."""
    # Only the rows shown pay for all their columns: the sorted ids of the page first, then
    # those episodes; their cost from their own LLM calls (the view would decode them all).
    where, params = flt.where()
    order = f"{SORTS[sort]} {'DESC' if descending else 'ASC'} NULLS LAST, episode_id"
    sort_expr = "input_tokens + output_tokens AS tokens" if sort == "tokens" else SORTS[sort]
    total = con.execute(f"SELECT count(*) FROM episodes WHERE {where}", params).fetchone()[0] if count else -1
    ids = [r[0] for r in con.execute(
        f"SELECT episode_id, {sort_expr} FROM episodes WHERE {where} ORDER BY {order} "
        "LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()]
    rows = query_frame(con, f"SELECT {_EPISODE_SELECT} FROM episodes WHERE episode_id IN "
                       "(SELECT unnest(?))", [ids])
    costs = query_frame(con, "SELECT episode_id, sum(cost_usd) AS cost_usd FROM llm_calls WHERE "
                        "episode_id IN (SELECT unnest(?)) GROUP BY episode_id", [ids])
    rows = rows.merge(costs, on="episode_id", how="left")
    rows = rows.set_index("episode_id").loc[ids].reset_index()  # the sorted order
    return rows[list(EPISODE_COLUMNS)], int(total)


def facets(store: Store) -> Facets:
    """The distinct runs, suites, tasks, scaffolds, models and outcomes of the store."""
    with store.reader() as con:
        return facets_of(query_frame(con, FACETS_SQL))


# --- SQL console ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExampleQuery:
    title: str
    sql: str


EXAMPLE_QUERIES: tuple[ExampleQuery, ...] = (
    ExampleQuery("Success rate, steps, tokens and cost per model and scaffold", """
SELECT model, scaffold, count(*) AS episodes,
       round(avg((outcome = 'success')::INT), 3) AS success_rate,
       round(avg(steps), 1) AS mean_steps,
       sum(input_tokens + output_tokens) AS tokens,
       round(sum(cost_usd), 4) AS cost_usd
FROM episodes WHERE ablation_shard IS NULL
GROUP BY ALL ORDER BY success_rate DESC"""),
    ExampleQuery("How each model fails: outcomes per model", """
SELECT model, outcome, count(*) AS episodes
FROM episodes GROUP BY ALL ORDER BY model, episodes DESC"""),
    ExampleQuery("Which tools each model reaches for, and how often they fail", """
SELECT model, tool_name, count(*) AS calls, round(avg((NOT ok)::INT), 3) AS error_rate
FROM tool_calls GROUP BY ALL ORDER BY model, calls DESC"""),
    ExampleQuery("Tasks where models disagree", """
SELECT suite, task_id,
       string_agg(DISTINCT model || ': ' || outcome, ', ' ORDER BY model || ': ' || outcome) AS outcomes
FROM episodes WHERE ablation_shard IS NULL
GROUP BY suite, task_id HAVING count(DISTINCT outcome) > 1 ORDER BY suite, task_id"""),
    ExampleQuery("How each model breaks the protocol", """
SELECT model, protocol_error, count(*) AS steps
FROM steps WHERE protocol_error IS NOT NULL GROUP BY ALL ORDER BY steps DESC"""),
    ExampleQuery("Time to first token and decode speed per model", """
SELECT model, count(*) AS calls, median(time_to_first_token_s) AS ttft_s,
       median(tokens_per_second) AS tokens_per_s, median(duration_ms) AS call_ms
FROM llm_calls GROUP BY model ORDER BY model"""),
    ExampleQuery("The least confident tokens (needs --logprobs)", """
SELECT model, token, round(logprob, 3) AS logprob, episode_id, step_index
FROM token_events WHERE logprob IS NOT NULL ORDER BY logprob LIMIT 50"""),
    ExampleQuery("Retried and failed LLM calls: errors per model", """
SELECT model, error_type, count(*) AS attempts, max(attempt) AS max_attempt
FROM llm_attempts GROUP BY ALL ORDER BY attempts DESC"""),
)


def sql_result(store: Store, sql: str, max_rows: int = 10_000) -> tuple[pd.DataFrame, bool]:
    """User SQL through the sandboxed, read-only ``run_sql``: (rows, truncated)."""
    table = run_sql(store, sql, max_rows=max_rows + 1)
    truncated = table.num_rows > max_rows
    return table.slice(0, max_rows).to_pandas(), truncated
