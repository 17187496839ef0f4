"""What the app shows, as plain functions over a :class:`Store` (the CLI can use them too).

Every function that reads opens one read-only connection under the store's shared lock,
runs its queries and closes it: nothing is held between calls, so a run writing the store is
never kept waiting for long and no reader ever meets a lock error. Each page of the app
loads through one bundle (``store_summary``, ``episode_cube``, ``episode_table``,
``load_trace_page``, ...); the pure functions over the returned frames (``outcome_matrix``,
``model_summary``, ``span_tree``, ``conversation``) hold the statistics and shaping.

Costs on a store of 1M spans (bench/ui_load.py, fresh connection each time): reading the
``episodes`` view's JSON-derived columns (suite, task, scaffold, outcome) of all ~20k
episodes takes ~0.2 s; summing ``cost_usd`` decodes every LLM span's attributes (~0.6 s), so
cubes are per run and cached while the run is unchanged; everything else reads promoted
columns or one episode's rows, in tens of milliseconds.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from tracer.attributes import Outcome
from tracer.queries import describe_schema, run_sql
from tracer.store import Store

OUTCOMES = (Outcome.SUCCESS, Outcome.FAILURE, Outcome.PROTOCOL_ERROR, Outcome.BUDGET_EXHAUSTED,
            Outcome.ERROR)
Z95 = 1.959964


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
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
    status: str  # running | finished | interrupted | failed
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
        return _frame(con, CUBE_SQL.format(runs=condition), params * 2)


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
    successes = out[Outcome.SUCCESS] if Outcome.SUCCESS in out else 0
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
    clusters = int((episodes > 0).sum())
    if clusters < 2:
        return math.sqrt(p * (1 - p) / max(n - 1, 1))
    residual = ((successes - episodes * p) ** 2).sum()
    return math.sqrt(clusters / (clusters - 1) * residual) / n


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
        found = facets_of(_frame(con, FACETS_SQL)) if with_facets else None
        rows, total = _episode_rows(con, flt, sort, descending, limit, offset)
    return EpisodePage(rows, total, limit, offset, found)


def _episode_rows(con: duckdb.DuckDBPyConnection, flt: EpisodeFilter, sort: str, descending: bool,
                  limit: int, offset: int, *, count: bool = True) -> tuple[pd.DataFrame, int]:
    # Only the rows shown pay for all their columns: the sorted ids of the page first, then
    # those episodes; their cost from their own LLM calls (the view would decode them all).
    where, params = flt.where()
    order = f"{SORTS[sort]} {'DESC' if descending else 'ASC'} NULLS LAST, episode_id"
    sort_expr = "input_tokens + output_tokens AS tokens" if sort == "tokens" else SORTS[sort]
    total = con.execute(f"SELECT count(*) FROM episodes WHERE {where}", params).fetchone()[0] if count else -1
    ids = [r[0] for r in con.execute(
        f"SELECT episode_id, {sort_expr} FROM episodes WHERE {where} ORDER BY {order} "
        "LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()]
    rows = _frame(con, f"SELECT {_EPISODE_SELECT} FROM episodes WHERE episode_id IN "
                  "(SELECT unnest(?))", [ids])
    costs = _frame(con, "SELECT episode_id, sum(cost_usd) AS cost_usd FROM llm_calls WHERE "
                   "episode_id IN (SELECT unnest(?)) GROUP BY episode_id", [ids])
    rows = rows.merge(costs, on="episode_id", how="left")
    rows = rows.set_index("episode_id").loc[ids].reset_index()  # the sorted order
    return rows[list(EPISODE_COLUMNS)], int(total)


def facets(store: Store) -> Facets:
    """The distinct runs, suites, tasks, scaffolds, models and outcomes of the store."""
    with store.reader() as con:
        return facets_of(_frame(con, FACETS_SQL))


def _picker(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows[["episode_id"]].copy()
    out["label"] = [episode_label(r) for r in rows.to_dict("records")]
    return out


def find_episodes(store: Store, flt: EpisodeFilter = EpisodeFilter(), limit: int = 200) -> pd.DataFrame:
    """The latest episodes of the filter, each with a readable label (for pickers)."""
    return _picker(episode_table(store, flt, limit=limit).rows)


def episode_label(row: dict[str, Any]) -> str:
    seed = "" if pd.isna(row.get("seed")) else f" seed {int(row['seed'])}"
    return (f"{row.get('model')} · {row.get('scaffold')} · {row.get('suite')}/{row.get('task_id')}"
            f"{seed} · {row.get('outcome')} · {row.get('episode_id')}")


# --- trace explorer ---------------------------------------------------------------------------
SPANS_SQL = """
SELECT span_id, parent_span_id, name, span_type, kind, start_ns, end_ns, duration_ms,
       status_code, status_message, error_type, step_index, tool_name, model_id,
       input_tokens, output_tokens, events_count
FROM spans WHERE trace_id = ? AND episode_id = ? ORDER BY start_ns, span_id
"""
LLM_SQL = """
SELECT span_id, step_index, request_model, response_model, input_tokens, output_tokens,
       time_to_first_token_s, tokens_per_second, attempts, cost_usd, status_code,
       status_message, error_type, duration_ms, events_count,
       CAST(finish_reasons AS VARCHAR) AS finish_reasons,
       CAST(system_instructions AS VARCHAR) AS system_instructions,
       CAST(input_messages AS VARCHAR) AS input_messages,
       CAST(output_messages AS VARCHAR) AS output_messages,
       CAST(tool_call_errors AS VARCHAR) AS tool_call_errors
FROM llm_calls WHERE episode_id = ? ORDER BY started_at, span_id
"""
STEPS_SQL = """
SELECT step_index, span_id, input, output, CAST(action AS VARCHAR) AS action, action_type,
       action_tool, protocol_error, llm_calls, tool_calls, input_tokens, output_tokens,
       status_code, duration_ms
FROM steps WHERE episode_id = ? ORDER BY step_index
"""
TOOLS_SQL = """
SELECT span_id, step_index, tool_name, call_id, arguments, result, ok, error_type,
       error_message, truncated, duration_ms
FROM tool_calls WHERE episode_id = ? ORDER BY started_at, span_id
"""
ATTEMPTS_SQL = """
SELECT span_id, step_index, attempt, error_type, error_message, status_code, retry_after_s,
       wait_s, duration_ms
FROM llm_attempts WHERE episode_id = ? ORDER BY time
"""


@dataclass(frozen=True)
class EpisodeTrace:
    """One episode, everything the trace explorer shows (span attributes are fetched apart)."""

    episode: dict[str, Any]
    spans: pd.DataFrame  # depth-first tree order, with depth, label, offset_ms
    steps: pd.DataFrame
    llm_calls: pd.DataFrame
    tool_calls: pd.DataFrame
    attempts: pd.DataFrame


def load_trace(store: Store, episode_id: str) -> EpisodeTrace | None:
    """The episode's row, span tree, steps, LLM calls, tool calls and failed attempts."""
    with store.reader() as con:
        return _trace(con, episode_id)


def _trace(con: duckdb.DuckDBPyConnection, episode_id: str) -> EpisodeTrace | None:
    found = _frame(con, "SELECT * FROM episodes WHERE episode_id = ?", [episode_id])
    if found.empty:
        return None
    episode = found.iloc[0].to_dict()
    # Episodes of a run share its trace: the episode's spans are those carrying its id.
    spans = _frame(con, SPANS_SQL, [episode["trace_id"], episode_id])
    parts = [_frame(con, sql, [episode_id]) for sql in (STEPS_SQL, LLM_SQL, TOOLS_SQL, ATTEMPTS_SQL)]
    return EpisodeTrace(episode, span_tree(spans, root=episode["span_id"]), *parts)


@dataclass(frozen=True)
class TracePage:
    picker: pd.DataFrame  # the latest episodes: episode_id, label
    trace: EpisodeTrace | None  # the chosen episode (the latest when none was chosen)


def load_trace_page(store: Store, episode_id: str | None = None, picker_limit: int = 200) -> TracePage:
    """The Trace explorer's data through one connection: the picker and one episode's trace."""
    with store.reader() as con:
        rows, _ = _episode_rows(con, EpisodeFilter(), "started_at", True, picker_limit, 0,
                                count=False)
        picker = _picker(rows)
        chosen = episode_id or (picker["episode_id"].iloc[0] if len(picker) else None)
        return TracePage(picker, _trace(con, chosen) if chosen else None)


def span_tree(spans: pd.DataFrame, root: str | None = None) -> pd.DataFrame:
    """Spans in depth-first order (children by start time) with depth, an indented label and
    the start offset from the root in milliseconds. Orphans (parent not in the frame) are roots."""
    if spans.empty:
        return spans.assign(depth=[], label=[], offset_ms=[], end_offset_ms=[])
    ids = set(spans["span_id"])
    children: dict[str | None, list[int]] = {}
    for i, parent in enumerate(spans["parent_span_id"]):
        key = parent if parent in ids and spans["span_id"].iat[i] != root else None
        children.setdefault(key, []).append(i)
    order: list[tuple[int, int]] = []
    stack = [(i, 0) for i in reversed(children.get(None, []))]
    while stack:
        i, depth = stack.pop()
        order.append((i, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(spans["span_id"].iat[i], [])))
    out = spans.iloc[[i for i, _ in order]].reset_index(drop=True)
    out["depth"] = [d for _, d in order]
    out["label"] = ["\u2003" * d + n for d, n in zip(out["depth"], out["name"], strict=True)]
    start = int(spans["start_ns"].min())
    out["offset_ms"] = (out["start_ns"] - start) / 1e6
    out["end_offset_ms"] = (out["end_ns"] - start) / 1e6
    return out


@dataclass(frozen=True)
class ChatMessage:
    """One message as the model saw it (GenAI ``parts`` flattened for display)."""

    role: str
    text: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()  # {id, name, arguments}
    tool_results: tuple[dict[str, Any], ...] = ()  # {id, response}


def parse_messages(value: Any) -> list[ChatMessage]:
    """GenAI messages (JSON text or list) as ChatMessages; plain text is one user message."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [ChatMessage("user", value)]
    if isinstance(value, str):  # a JSON string: a text transcript (text protocols)
        return [ChatMessage("user", value)]
    if isinstance(value, dict):
        value = [value]
    return [_message(m) for m in value if isinstance(m, dict)]


def _message(raw: dict[str, Any]) -> ChatMessage:
    texts, calls, results = [], [], []
    for part in raw.get("parts") or []:
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call":
            calls.append({"id": part.get("id"), "name": part.get("name"),
                          "arguments": part.get("arguments")})
        elif kind == "tool_call_response":
            results.append({"id": part.get("id"), "response": part.get("response")})
        else:
            texts.append(json.dumps(part, ensure_ascii=False))
    if "content" in raw and not texts:  # the shape with a plain content string
        texts.append(str(raw["content"]))
    return ChatMessage(str(raw.get("role", "?")), "".join(texts), tuple(calls), tuple(results))


@dataclass(frozen=True)
class StepView:
    """One loop iteration as the model lived it: what it was given, what it said, what ran."""

    index: int
    fed_in: list[ChatMessage]
    output: list[ChatMessage]
    action: dict[str, Any] | None
    protocol_error: str | None
    llm_calls: list[dict[str, Any]] = field(default_factory=list)  # rows of trace.llm_calls
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # rows of trace.tool_calls
    attempts: list[dict[str, Any]] = field(default_factory=list)  # failed attempts


def conversation(trace: EpisodeTrace) -> list[StepView]:
    """The episode step by step: input fed in, the model's output, tool calls and results."""
    def by_step(frame: pd.DataFrame) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for row in frame.to_dict("records"):
            out.setdefault(_int(row.get("step_index")), []).append(row)
        return out

    llm, tools, attempts = by_step(trace.llm_calls), by_step(trace.tool_calls), by_step(trace.attempts)
    views = []
    for step in trace.steps.to_dict("records"):
        index = _int(step["step_index"])
        calls = llm.get(index, [])
        output = [m for c in calls for m in parse_messages(c.get("output_messages"))]
        if not output and isinstance(step.get("output"), str):
            output = [ChatMessage("assistant", step["output"])]
        action = json.loads(step["action"]) if isinstance(step.get("action"), str) else None
        error = step.get("protocol_error")
        views.append(StepView(index, parse_messages(step.get("input")), output, action,
                              error if isinstance(error, str) else None, calls,
                              tools.get(index, []), attempts.get(index, [])))
    return views


def _int(value: Any) -> int:
    return -1 if value is None or pd.isna(value) else int(value)


def token_stream(store: Store, span_id: str) -> pd.DataFrame:
    """The streamed tokens of one LLM call: index, text, offset, logprob, probability."""
    with store.reader() as con:
        frame = _frame(con, "SELECT token_index, token, offset_ms, logprob, "
                       "CAST(top_logprobs AS VARCHAR) AS top_logprobs FROM token_events "
                       "WHERE span_id = ? ORDER BY token_index", [span_id])
    frame["probability"] = frame["logprob"].map(lambda v: math.exp(v) if pd.notna(v) else None)
    return frame


@dataclass(frozen=True)
class SpanDetail:
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: pd.DataFrame  # name, time, attributes (token events are shown in the token view)


def span_detail(store: Store, span_id: str) -> SpanDetail | None:
    """A span's raw attributes, resource and non-token events."""
    with store.reader() as con:
        row = con.execute("SELECT CAST(attributes AS VARCHAR), CAST(resource AS VARCHAR) "
                          "FROM spans WHERE span_id = ? LIMIT 1", [span_id]).fetchone()
        if row is None:
            return None
        events = _frame(con, "SELECT seq, name, time, CAST(attributes AS VARCHAR) AS attributes "
                        "FROM span_events WHERE span_id = ? AND name <> 'shardscope.token' "
                        "ORDER BY seq", [span_id])
    return SpanDetail(json.loads(row[0] or "{}"), json.loads(row[1] or "{}"), events)


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


# --- what each page loads in its default state (bench/ui_load.py times these) ----------------
def page_loaders() -> dict[str, Callable[[Store], Any]]:
    """Per page of the app, the loads it makes when opened with no filter or selection (the
    sidebar's summary included; the SQL console runs nothing until asked)."""

    def overview(store: Store) -> Any:  # opens on the latest run
        summary = store_summary(store)
        return summary, episode_cube(store, [summary.runs[0].run_id])

    def overview_all_runs(store: Store) -> Any:
        return store_summary(store), episode_cube(store)

    def runs(store: Store) -> Any:
        return store_summary(store), episode_table(store, with_facets=True)

    def trace(store: Store) -> Any:
        summary, page = store_summary(store), load_trace_page(store)
        assert page.trace is not None
        return summary, page, token_stream(store, page.trace.llm_calls["span_id"].iloc[0])

    def sql(store: Store) -> Any:
        return store_summary(store), describe_schema(store)

    return {"overview": overview, "overview, all runs": overview_all_runs, "runs": runs,
            "trace": trace, "sql": sql}
