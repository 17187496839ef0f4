"""Frames the comparison functions work on, read from the store with one filter.

Each function takes a :class:`Store` (one read-only connection per call) or an open
connection (``with store.reader() as con``: a comparison reads everything through one, which
on a large store saves ~0.1 s per read)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from shardscope.tracer import attributes as A
from shardscope.tracer.explore import EpisodeFilter
from shardscope.tracer.queries import read_frame
from shardscope.tracer.store import Store

Source = Store | duckdb.DuckDBPyConnection


def _frame(source: Source, sql: str, params: Any = None) -> pd.DataFrame:
    if isinstance(source, Store):
        return read_frame(source, sql, params)
    return source.execute(sql, params or []).df()


# Which episodes to compare: the app's episode filter (every field narrows; empty means all).
Selection = EpisodeFilter


# The comparison reads ``spans`` directly: the ``episodes`` and ``steps`` views join every
# LLM, tool and step span of the store to count tokens and calls, which the comparison does
# not need (on a store of 1M spans a filtered read of the views took ~2 s, this ~0.1 s).
# Same column names and semantics as the views; tests/test_analysis_store.py checks they agree.
def _extracted(fields: list[tuple[str, str, str | None]], base: str, where: str) -> str:
    """SELECT ``base`` columns and attributes (key, alias, cast) from spans matching ``where``,
    parsing each span's attribute JSON once (one ``->>`` per key would parse it per key)."""
    paths = ", ".join(f"'$.\"{key}\"'" for key, _, _ in fields)
    columns = [f"TRY_CAST(_a[{i}] AS {cast}) AS {alias}" if cast else f"_a[{i}] AS {alias}"
               for i, (_, alias, cast) in enumerate(fields, start=1)]
    return (f"SELECT {base}, {', '.join(columns)} FROM (SELECT *, json_extract_string("
            f"attributes, [{paths}]) AS _a FROM spans WHERE {where})")


EPISODES_SQL = _extracted(
    [(A.SUITE_NAME, "suite", None), (A.TASK_ID, "task_id", None),
     (A.SCAFFOLD_NAME, "scaffold", None), (A.SCAFFOLD_HASH, "scaffold_hash", None),
     (A.SEED, "seed", "BIGINT"), (A.EPISODE_OUTCOME, "recorded_outcome", None),
     (A.EPISODE_SCORE, "score", "DOUBLE"), (A.EPISODE_STEPS, "steps", "BIGINT"),
     (A.EPISODE_FINAL_ANSWER, "final_answer", None), (A.EPISODE_KEY, "episode_key", None),
     (A.ABLATION_SHARD, "ablation_shard", None), (A.ABLATION_MODE, "ablation_mode", None),
     (A.ABLATION_KIND, "ablation_kind", None),
     (A.ABLATION_BASELINE_KEY, "baseline_episode_key", None)],
    "episode_id, run_id, model_id AS model, provider, start_time AS started_at, "
    "duration_ms / 1000.0 AS duration_s, status_code",
    "span_type = 'episode'",
)
EPISODES_SQL = f"""
SELECT * EXCLUDE (recorded_outcome, status_code),
       coalesce(recorded_outcome, CASE WHEN status_code = 'ERROR' THEN 'error' END) AS outcome
FROM ({EPISODES_SQL})
"""


def episodes(store: Source, selection: Selection, *, ablations: bool = False,
             systems: Sequence[str] | None = None) -> pd.DataFrame:
    """Finished episodes of the selection (baselines only unless ``ablations``), and only
    these model · scaffold ``systems`` when given."""
    where, params = selection.where()
    if not ablations:
        where += " AND ablation_shard IS NULL"
    if systems:
        where += " AND concat_ws(' · ', model, scaffold) IN (SELECT unnest(?))"
        params = [*params, list(systems)]
    return _frame(store, f"SELECT * FROM ({EPISODES_SQL}) WHERE outcome IS NOT NULL "
                             f"AND {where} ORDER BY started_at, episode_id", params)


def ablation_episodes(store: Source, selection: Selection) -> pd.DataFrame:
    """The selection's finished ablated episodes and their baselines, wherever those were
    run (an ablation run may reuse baselines stored by an earlier run)."""
    where, params = selection.where()
    return _frame(
        store,
        f"""WITH e AS ({EPISODES_SQL}),
            ablated AS (SELECT * FROM e WHERE {where} AND ablation_shard IS NOT NULL
                        AND outcome IS NOT NULL)
            SELECT * FROM ablated
            UNION ALL BY NAME
            SELECT * FROM e WHERE ablation_shard IS NULL AND outcome IS NOT NULL
              AND episode_key IN (SELECT baseline_episode_key FROM ablated)
            ORDER BY started_at, episode_id""",
        params,
    )


def systems_of(store: Source) -> pd.DataFrame:
    """Suite x model x scaffold with their finished baseline and ablation episode counts."""
    if isinstance(store, Store) and not store.exists():
        return pd.DataFrame(columns=["suite", "model", "scaffold", "system", "episodes", "ablated"])
    return _frame(store, f"""
        SELECT suite, model, scaffold, concat_ws(' · ', model, scaffold) AS system,
               count(*) FILTER (WHERE ablation_shard IS NULL) AS episodes,
               count(*) FILTER (WHERE ablation_shard IS NOT NULL) AS ablated
        FROM ({EPISODES_SQL}) WHERE outcome IS NOT NULL GROUP BY ALL ORDER BY ALL""")


def available(store: Source) -> dict[str, tuple[str, ...]]:
    """The suites, models and scaffolds the store has episodes of (for error messages)."""
    frame = systems_of(store)
    return {f"{c}s": tuple(sorted(str(v) for v in frame[c].dropna().unique()))
            for c in ("suite", "model", "scaffold")}


STEPS_SQL = _extracted(
    [(A.STEP_ACTION, "action_json", None), (A.STEP_PROTOCOL_ERROR, "protocol_error", None),
     (A.STEP_OUTPUT, "output", None)],
    "episode_id, step_index", "span_type = 'step' AND episode_id IN (SELECT unnest($ids))",
) + " ORDER BY episode_id, step_index"
TOOL_CALLS_SQL = _extracted(
    [(A.TOOL_OK, "recorded_ok", "BOOLEAN")],
    "span_id, episode_id, step_index, model_id AS model, tool_name, error_type, "
    "start_time AS started_at, status_code",
    "span_type = 'tool_call' AND episode_id IN (SELECT unnest($ids))",
)
TOOL_CALLS_SQL = (f"SELECT * EXCLUDE (recorded_ok, status_code), coalesce(recorded_ok, "
                  f"status_code <> 'ERROR') AS ok FROM ({TOOL_CALLS_SQL}) "
                  "ORDER BY episode_id, step_index, started_at")


def steps_of(store: Source, episode_ids: Sequence[str]) -> pd.DataFrame:
    """Steps of these episodes in order: action (JSON text), protocol error, output."""
    return _frame(store, STEPS_SQL, {"ids": list(episode_ids)})


def tool_calls_of(store: Source, episode_ids: Sequence[str]) -> pd.DataFrame:
    """Tool calls of these episodes in order: tool, ok, error type."""
    return _frame(store, TOOL_CALLS_SQL, {"ids": list(episode_ids)})
