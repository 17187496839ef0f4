"""Frames the comparison functions work on, read from the store with one filter."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from tracer.explore import EpisodeFilter
from tracer.queries import read_frame
from tracer.store import Store

# Which episodes to compare: the app's episode filter (every field narrows; empty means all).
Selection = EpisodeFilter


def episodes(store: Store, selection: Selection, *, ablations: bool = False) -> pd.DataFrame:
    """Episodes of the selection: baselines only, or (``ablations=True``) every episode."""
    where, params = selection.where()
    if not ablations:
        where += " AND ablation_shard IS NULL"
    return read_frame(store, f"SELECT * FROM episodes WHERE {where} ORDER BY started_at", params)


def ablation_episodes(store: Store, selection: Selection) -> pd.DataFrame:
    """The selection's ablated episodes and their baselines, wherever those were run (an
    ablation run may reuse baselines stored by an earlier run)."""
    where, params = selection.where()
    return read_frame(
        store,
        f"""WITH ablated AS (SELECT * FROM episodes WHERE {where} AND ablation_shard IS NOT NULL
                             AND outcome IS NOT NULL)
            SELECT * FROM ablated
            UNION ALL BY NAME
            SELECT * FROM episodes WHERE ablation_shard IS NULL AND outcome IS NOT NULL
              AND episode_key IN (SELECT baseline_episode_key FROM ablated)
            ORDER BY started_at""",
        params,
    )


def systems_of(store: Store) -> pd.DataFrame:
    """Suite x model x scaffold with their finished baseline and ablation episode counts."""
    if not store.exists():
        return pd.DataFrame(columns=["suite", "model", "scaffold", "system", "episodes", "ablated"])
    return read_frame(store, """
        SELECT suite, model, scaffold, concat_ws(' · ', model, scaffold) AS system,
               count(*) FILTER (WHERE ablation_shard IS NULL) AS episodes,
               count(*) FILTER (WHERE ablation_shard IS NOT NULL) AS ablated
        FROM episodes WHERE outcome IS NOT NULL GROUP BY ALL ORDER BY ALL""")


def available(store: Store) -> dict[str, tuple[str, ...]]:
    """The suites, models and scaffolds the store has episodes of (for error messages)."""
    if not store.exists():
        return {"suites": (), "models": (), "scaffolds": ()}
    frame = read_frame(store, "SELECT DISTINCT suite, model, scaffold FROM episodes")
    return {f"{c}s": tuple(sorted(str(v) for v in frame[c].dropna().unique()))
            for c in ("suite", "model", "scaffold")}


def steps_of(store: Store, episode_ids: Sequence[str]) -> pd.DataFrame:
    """Steps (with their action JSON) of these episodes, in order."""
    if not len(episode_ids):
        return read_frame(store, "SELECT * FROM steps WHERE FALSE")
    return read_frame(
        store,
        "SELECT s.*, CAST(s.action AS VARCHAR) AS action_json FROM steps s "
        "WHERE s.episode_id IN (SELECT unnest(?)) ORDER BY s.episode_id, s.step_index",
        [list(episode_ids)],
    )


def tool_calls_of(store: Store, episode_ids: Sequence[str]) -> pd.DataFrame:
    if not len(episode_ids):
        return read_frame(store, "SELECT * FROM tool_calls WHERE FALSE")
    return read_frame(
        store,
        "SELECT * FROM tool_calls WHERE episode_id IN (SELECT unnest(?)) "
        "ORDER BY episode_id, step_index, started_at",
        [list(episode_ids)],
    )
