"""Shard influence: how much each model's behaviour depends on each piece of its task's world.

An ablation episode re-runs a baseline episode (same task, model, scaffold, seed) with one
shard removed or replaced by a plausible wrong value (``shardscope ablate``). Influence of a
shard on a model = baseline outcome - ablated outcome (success and score), averaged over
the pairs, with a standard error clustered by task; trajectory change = how far the ablated
run's actions moved from the baseline's (normalized edit distance, 0 = identical).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shardscope.analysis.stats import estimate

Distance = Callable[[Sequence[Any], Sequence[Any]], float]


def ablation_pairs(episodes: pd.DataFrame, trajectories: Mapping[str, Sequence[Any]] | None = None,
                   distance: Distance | None = None) -> pd.DataFrame:
    """Each ablated episode next to its baseline (joined on the baseline's episode key), with
    ``trajectory_change`` between them when ``trajectories`` (episode_id -> actions) and
    ``distance`` are given (else NaN)."""
    if episodes.empty or "ablation_shard" not in episodes:
        return pd.DataFrame()
    base = episodes[episodes.ablation_shard.isna()]
    ablated = episodes[episodes.ablation_shard.notna()]
    # A baseline may have been run more than once (another run): use the latest.
    base = base.sort_values("started_at").drop_duplicates("episode_key", keep="last")
    pairs = ablated.merge(
        base[["episode_key", "episode_id", "outcome", "score"]].rename(
            columns={"episode_key": "baseline_episode_key", "episode_id": "base_episode_id",
                     "outcome": "base_outcome", "score": "base_score"}),
        on="baseline_episode_key", how="inner",
    )
    if trajectories is not None and distance is not None:
        change: list[float] | float = [distance(trajectories.get(b, ()), trajectories.get(a, ()))
                  for b, a in zip(pairs.base_episode_id, pairs.episode_id, strict=True)]
    else:
        change = np.nan
    return pairs.assign(
        shard=pairs.ablation_shard, mode=pairs.ablation_mode,
        base_success=(pairs.base_outcome == "success").astype(float),
        ablated_success=(pairs.outcome == "success").astype(float),
        ablated_score=pairs.score.astype(float),
        base_score=pairs.base_score.astype(float),
        trajectory_change=change,
    )


def shard_influence(
    pairs: pd.DataFrame,
    by: Sequence[str] = ("suite", "task_id", "shard", "model", "scaffold", "mode"),
) -> pd.DataFrame:
    """One row per group in ``by`` of :func:`ablation_pairs`: n pairs, influence on success
    and score (mean drop, SE clustered by task, 95% interval), mean trajectory change."""
    columns = [*by, "n", "tasks", "success_drop", "success_drop_se", "ci_low", "ci_high",
               "score_drop", "score_drop_se", "trajectory_change"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    data = pairs.assign(
        success_drop=pairs.base_success - pairs.ablated_success,
        score_drop=pairs.base_score.fillna(0) - pairs.ablated_score.fillna(0),
    )
    rows = []
    for key, group in data.groupby(list(by), dropna=False, sort=True):
        tasks = (group.suite.astype(str) + "/" + group.task_id.astype(str)).to_numpy()
        success = estimate(group.success_drop.to_numpy(), tasks)
        score = estimate(group.score_drop.to_numpy(), tasks)
        rows.append({
            **dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
            "n": len(group), "tasks": success.clusters,
            "success_drop": success.mean, "success_drop_se": success.se,
            "ci_low": success.ci_low, "ci_high": success.ci_high,
            "score_drop": score.mean, "score_drop_se": score.se,
            "trajectory_change": group.trajectory_change.mean(),
        })
    return pd.DataFrame(rows, columns=columns)


def influence_map(influence: pd.DataFrame, value: str = "score_drop") -> pd.DataFrame:
    """Shards x models matrix of ``value`` (rows: suite/task/shard; columns: model)."""
    if influence.empty:
        return pd.DataFrame()
    return influence.pivot_table(index=["suite", "task_id", "shard"], columns="model",
                                 values=value, aggfunc="mean")
