"""The Runs page's episode table: one filtered, sorted page of episodes, the number matching
and the values each filter offers; the count, the sort and the facets read the episodes'
typed rows, and only the page's rows pay for the view's sums (bench/ui_load.py)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from shardscope.tracer.queries.filters import EpisodeFilter, Facets, facets_of
from shardscope.tracer.queries.frames import aggregate_row, query_frame
from shardscope.tracer.schema import EPISODE_ROW_SQL
from shardscope.tracer.store import Store

TABLE_COLUMNS = ("episode_id", "run_id", "suite", "task_id", "scaffold", "model", "seed",
                 "outcome", "score", "steps", "llm_calls", "tool_calls", "tokens", "cost_usd",
                 "duration_s", "started_at", "error", "ablation_shard", "ablation_mode")
SORTS = {"started_at": "started_at", "duration_s": "duration_s", "tokens": "tokens",
         "steps": "steps", "model": "model", "task_id": "task_id", "suite": "suite",
         "scaffold": "scaffold", "seed": "seed", "outcome": "outcome", "score": "score",
         "cost_usd": "cost_usd"}
_TABLE_SELECT = ", ".join(
    "input_tokens + output_tokens AS tokens" if c == "tokens" else c for c in TABLE_COLUMNS
)
# Sorts the episode's own row answers (every filter column is in it): counting and sorting
# there skips adding up every episode's call sums, which the view does.
_VIEW_SORTS = ("tokens", "steps", "cost_usd")
_ROWS = f"({EPISODE_ROW_SQL})"


@dataclass(frozen=True)
class EpisodePage:
    rows: pd.DataFrame
    total: int  # episodes matching the filter (rows holds at most `limit` of them)
    limit: int
    offset: int = 0
    facets: Facets | None = None  # every value of each filter column, when asked for


FACETS_SQL = f"SELECT DISTINCT run_id, suite, task_id, scaffold, model, outcome FROM {_ROWS}"


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
    # those episodes.
    where, params = flt.where()
    order = f"{SORTS[sort]} {'DESC' if descending else 'ASC'} NULLS LAST, episode_id"
    sort_expr = "input_tokens + output_tokens AS tokens" if sort == "tokens" else SORTS[sort]
    source = "episodes" if sort in _VIEW_SORTS else _ROWS
    total = aggregate_row(con, f"SELECT count(*) FROM {_ROWS} WHERE {where}", params)[0] if count else -1
    ids = [r[0] for r in con.execute(
        f"SELECT episode_id, {sort_expr} FROM {source} WHERE {where} ORDER BY {order} "
        "LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()]
    rows = query_frame(con, f"SELECT {_TABLE_SELECT} FROM episodes WHERE episode_id IN "
                       "(SELECT unnest(?))", [ids])
    rows = rows.set_index("episode_id").loc[ids].reset_index()  # the sorted order
    return rows[list(TABLE_COLUMNS)], int(total)


def facets(store: Store) -> Facets:
    """The distinct runs, suites, tasks, scaffolds, models and outcomes of the store."""
    with store.reader() as con:
        return facets_of(query_frame(con, FACETS_SQL))
