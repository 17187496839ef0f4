"""The frames a comparison works on (``shardscope compare``, the app's Compare and Shards
pages, the report), read from the store with one filter.

Each function takes a :class:`Store` (one read-only connection per call) or an open
connection (a comparison reads everything through one). They read the typed tables directly
(tracer/typed.py): the ``episodes`` and ``steps`` views also add up every episode's and
step's call counts, which a comparison does not need. The episode's columns are the view's
own (:data:`shardscope.tracer.schema.EPISODE_ROW`); tests/test_analysis_store.py checks they
agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from shardscope.tracer.queries.filters import EpisodeFilter
from shardscope.tracer.queries.frames import Source, aggregate_row, frame_of
from shardscope.tracer.schema import EPISODE_ROW_SQL
from shardscope.tracer.store import Store
from shardscope.tracer.typed import EPISODE_COLUMNS

# Which episodes to compare: the app's episode filter (every field narrows; empty means all).
Selection = EpisodeFilter

# Columns of the episode row no comparison reads. Leaving them out keeps this read as fast as
# it was before the row had them (on the 1M-span bench store, reading them cost ~20%); a
# filter may still use them (``search`` matches the error).
UNREAD = ("trace_id", "span_id", "request_model", "ended_at", "error")
_SELECT = f"SELECT * EXCLUDE ({', '.join(UNREAD)})"
# The "model · scaffold" label in SQL, as ``analysis.stats.system_label`` builds it in Python:
# a part that is not recorded reads "?" (``concat_ws`` would drop it, so "m" for "m · ?").
SYSTEM_SQL = "coalesce(model, '?') || ' · ' || coalesce(scaffold, '?')"


def episodes(store: Source, selection: Selection, *, ablations: bool = False,
             systems: Sequence[str] | None = None) -> pd.DataFrame:
    """Finished episodes of the selection (baselines only unless ``ablations``), and only
    these model · scaffold ``systems`` when given."""
    where, params = selection.where()
    if not ablations:
        where += " AND ablation_shard IS NULL"
    if systems:
        where += f" AND {SYSTEM_SQL} IN (SELECT unnest(?))"
        params = [*params, list(systems)]
    return frame_of(store, f"{_SELECT} FROM ({EPISODE_ROW_SQL}) WHERE outcome IS NOT NULL "
                           f"AND {where} ORDER BY started_at, episode_id", params)


def ablation_episodes(store: Source, selection: Selection) -> pd.DataFrame:
    """The selection's finished ablated episodes and their baselines, wherever those were
    run (an ablation run may reuse baselines stored by an earlier run)."""
    if isinstance(store, Store):
        with store.reader() as con:
            return ablation_episodes(con, selection)
    # Most stores hold no ablation at all: a look at one column (<1 ms on the 1M-span bench
    # store) saves planning and converting the query below (~8 ms).
    if not aggregate_row(store, "SELECT count(*) FROM typed_episodes "
                                "WHERE ablation_shard IS NOT NULL")[0]:
        return pd.DataFrame(columns=[c for c in EPISODE_COLUMNS if c not in UNREAD])
    where, params = selection.where()
    return frame_of(
        store,
        f"""WITH e AS ({EPISODE_ROW_SQL}),
            ablated AS (SELECT * FROM e WHERE {where} AND ablation_shard IS NOT NULL
                        AND outcome IS NOT NULL)
            {_SELECT} FROM ablated
            UNION ALL BY NAME
            {_SELECT} FROM e WHERE ablation_shard IS NULL AND outcome IS NOT NULL
              AND episode_key IN (SELECT baseline_episode_key FROM ablated)
            ORDER BY started_at, episode_id""",
        params,
    )


def systems_of(store: Source) -> pd.DataFrame:
    """Suite x model x scaffold with their finished baseline and ablation episode counts, and
    the baselines' count of each outcome (``outcome_<name>``: what picks an informative pair)."""
    outcomes = [f"outcome_{o}" for o in _OUTCOMES]
    if isinstance(store, Store) and not store.exists():
        return pd.DataFrame(columns=["suite", "model", "scaffold", "system", "episodes", "ablated",
                                     *outcomes])
    counts = ", ".join(f"count(*) FILTER (WHERE ablation_shard IS NULL AND outcome = '{o}') "
                       f"AS outcome_{o}" for o in _OUTCOMES)
    return frame_of(store, f"""
        SELECT suite, model, scaffold, {SYSTEM_SQL} AS system,
               count(*) FILTER (WHERE ablation_shard IS NULL) AS episodes,
               count(*) FILTER (WHERE ablation_shard IS NOT NULL) AS ablated, {counts}
        FROM ({EPISODE_ROW_SQL}) WHERE outcome IS NOT NULL GROUP BY ALL ORDER BY ALL""")


_OUTCOMES = ("success", "failure", "protocol_error", "budget_exhausted", "error")


def available(store: Source) -> dict[str, tuple[str, ...]]:
    """The suites, models and scaffolds the store has episodes of (for error messages)."""
    frame = systems_of(store)
    return {f"{c}s": tuple(sorted(str(v) for v in frame[c].dropna().unique()))
            for c in ("suite", "model", "scaffold")}


STEPS_SQL = """
SELECT episode_id, step_index, CAST(action AS VARCHAR) AS action_json, protocol_error, output
FROM typed_steps WHERE episode_id IN (SELECT unnest($ids)) ORDER BY episode_id, step_index
"""
# Only what a comparison reads (the tool profile, paths, counts): span ids and times of 50k
# calls would cost more to convert than the query itself.
TOOL_CALLS_SQL = """
SELECT episode_id, step_index, model, tool_name, error_type, ok
FROM typed_tool_calls WHERE episode_id IN (SELECT unnest($ids))
ORDER BY episode_id, step_index, started_at
"""


# The tool use a comparison shows, added up where the calls are: per episode and tool, its
# calls and failed calls (``ok`` false, or the span failed), with the calls' model. Fetching
# every call (48k rows for two systems on the 1M-span bench store) to count them in pandas
# cost more than the counting.
TOOL_USE_SQL = """
SELECT episode_id, model, tool_name, count(*) AS calls,
       count(*) FILTER (WHERE NOT coalesce(ok, false)) AS failed
FROM typed_tool_calls WHERE episode_id IN (SELECT unnest($ids))
GROUP BY ALL ORDER BY ALL
"""

def steps_of(store: Source, episode_ids: Sequence[str]) -> pd.DataFrame:
    """Steps of these episodes in order: action (JSON text), protocol error, output."""
    # Through Arrow: DuckDB's own conversion to pandas took ~1.4x as long for the 26k steps
    # (long outputs) of the 1M-span bench store's comparison. Text columns come out as
    # pandas strings (a missing protocol error is NaN rather than None).
    return step_rows(store, episode_ids).to_pandas()


def step_rows(store: Source, episode_ids: Sequence[str]) -> pa.Table:
    """:func:`steps_of` as an Arrow table (what ``trajectory.paths_of`` reads: no pandas
    frame of every step is made)."""
    if isinstance(store, Store):
        with store.reader() as con:
            return step_rows(con, episode_ids)
    # A cursor: the relation API refuses a connection with a result still open
    # (``aggregate_row``'s).
    with store.cursor() as cursor:
        return cursor.sql(STEPS_SQL, params={"ids": list(episode_ids)}).to_arrow_table()


def tool_calls_of(store: Source, episode_ids: Sequence[str]) -> pd.DataFrame:
    """Tool calls of these episodes in order: tool, ok, error type."""
    return frame_of(store, TOOL_CALLS_SQL, {"ids": list(episode_ids)})


def tool_use_of(store: Source, episode_ids: Sequence[str]) -> pd.DataFrame:
    """Per episode, model and tool (of these episodes): calls and failed calls."""
    return frame_of(store, TOOL_USE_SQL, {"ids": list(episode_ids)})
