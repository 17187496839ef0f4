"""Shard influence: how much each model's behaviour depends on each piece of its task's world.

An ablation episode re-runs a baseline episode (same task, model, scaffold, seed) with one
shard removed or replaced by a plausible wrong value (``shardscope ablate``). Influence of a
shard on a model = baseline outcome - ablated outcome (success and score), averaged over
the pairs, with a standard error clustered by task; trajectory change = how far the ablated
run's actions moved from the baseline's (normalized edit distance, 0 = identical).

A pair's fingerprint is its two episodes' (:func:`shardscope.analysis.stats.repeat_key`):
pairs of one task with the same fingerprint (seeds at temperature 0) are one piece of
evidence, not several, so a cell of byte-identical repeats gets no interval rather than a
zero-width one.

A pair whose baseline or ablated episode ended in the ``error`` outcome (an infrastructure
failure: a backend down after retries, or an ``AblationError`` of a shard that could not be
ablated, which stores recorded before commit bc41af1 may hold) measures nothing about the
model: it is kept in the pairs with ``excluded`` saying why, left out of every influence
estimate, and counted per cell (``excluded_errors``). A ``protocol_error`` or
``budget_exhausted`` episode is the model's own failure and counts as one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shardscope.analysis.stats import REPEAT_KEY, estimate, repeat_key
from shardscope.tracer.attributes import Outcome

Distance = Callable[[Sequence[Any], Sequence[Any]], float]


def ablation_pairs(episodes: pd.DataFrame, trajectories: Mapping[str, Sequence[Any]] | None = None,
                   distance: Distance | None = None) -> pd.DataFrame:
    """Each ablated episode next to its baseline (joined on the baseline's episode key), with
    ``trajectory_change`` between them when ``trajectories`` (episode_id -> actions) and
    ``distance`` are given (else NaN), and with ``trajectories`` the pair's fingerprint
    (``REPEAT_KEY``: both episodes' outputs, outcomes and answers). ``excluded`` is None, or
    why the pair measures no influence (its baseline or ablated episode ended in an error)."""
    if episodes.empty or "ablation_shard" not in episodes:
        return pd.DataFrame()
    base = episodes[episodes.ablation_shard.isna()]
    ablated = episodes[episodes.ablation_shard.notna()]
    # A baseline may have been run more than once (another run): use the latest that
    # measured something (an error outcome only where every run of it ended in one).
    base = (base.assign(_measured=base.outcome != Outcome.ERROR)
            .sort_values(["_measured", "started_at"], kind="stable")
            .drop_duplicates("episode_key", keep="last"))
    answer = "final_answer" if "final_answer" in episodes else None
    pairs = ablated.merge(
        base[["episode_key", "episode_id", "outcome", "score", *([answer] if answer else [])]]
        .rename(columns={"episode_key": "baseline_episode_key", "episode_id": "base_episode_id",
                         "outcome": "base_outcome", "score": "base_score",
                         "final_answer": "base_final_answer"}),
        on="baseline_episode_key", how="inner",
    )
    if trajectories is not None:
        pairs = pairs.assign(**{REPEAT_KEY: _pair_keys(pairs, trajectories, answer is not None)})
    if trajectories is not None and distance is not None:
        change: list[float] | float = [distance(trajectories.get(b, ()), trajectories.get(a, ()))
                  for b, a in zip(pairs.base_episode_id, pairs.episode_id, strict=True)]
    else:
        change = np.nan
    return pairs.assign(
        excluded=_excluded(pairs.base_outcome, pairs.outcome),
        shard=pairs.ablation_shard, mode=pairs.ablation_mode,
        base_success=(pairs.base_outcome == "success").astype(float),
        ablated_success=(pairs.outcome == "success").astype(float),
        ablated_score=pairs.score.astype(float),
        base_score=pairs.base_score.astype(float),
        trajectory_change=change,
    )


def _excluded(base: pd.Series, ablated: pd.Series) -> list[str | None]:
    """Why each pair measures no influence: an error outcome on either side, else None."""
    reasons = {(True, True): "baseline and ablated episodes ended in an error",
               (True, False): "baseline episode ended in an error",
               (False, True): "ablated episode ended in an error"}
    return [reasons.get((b == Outcome.ERROR, a == Outcome.ERROR))
            for b, a in zip(base.tolist(), ablated.tolist(), strict=True)]


def _pair_keys(pairs: pd.DataFrame, trajectories: Mapping[str, Sequence[Any]],
               answers: bool) -> list[str]:
    """Each pair's fingerprint: its baseline's and its ablated episode's repeat keys."""
    def key(episode: str, outcome: object, answer: object) -> str:
        return repeat_key([getattr(a, "text", None) for a in trajectories.get(episode, ())],
                          outcome, answer)

    none = [None] * len(pairs)
    base_answers = pairs.base_final_answer.tolist() if answers else none
    ablated_answers = pairs.final_answer.tolist() if answers else none
    return [key(b, bo, ba) + key(e, eo, ea) for b, bo, ba, e, eo, ea in zip(
        pairs.base_episode_id.tolist(), pairs.base_outcome.tolist(), base_answers,
        pairs.episode_id.tolist(), pairs.outcome.tolist(), ablated_answers, strict=True)]


def shard_influence(
    pairs: pd.DataFrame,
    by: Sequence[str] = ("suite", "task_id", "shard", "model", "scaffold", "mode"),
) -> pd.DataFrame:
    """One row per group in ``by`` of :func:`ablation_pairs`: n pairs, influence on success
    and score (mean drop, SE clustered by task, 95% interval, for success cut to [-1, 1]),
    mean trajectory change.
    Byte-identical repeated pairs of a task (same ``REPEAT_KEY``) count once. Pairs with an
    ``excluded`` reason (an error outcome) are left out of ``n`` and of every estimate and
    counted in ``excluded_errors``; a cell of excluded pairs only has ``n`` 0 and NaN drops."""
    columns = [*by, "n", "tasks", "success_drop", "success_drop_se", "ci_low", "ci_high",
               "score_drop", "score_drop_se", "trajectory_change", "identical_repeats",
               "excluded_errors"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    data = pairs.assign(
        success_drop=pairs.base_success - pairs.ablated_success,
        score_drop=pairs.base_score.fillna(0) - pairs.ablated_score.fillna(0),
        excluded=pairs.get("excluded", None),
    )
    rows = []
    for key, cell in data.groupby(list(by), dropna=False, sort=True):
        group = cell[cell.excluded.isna()]
        tasks = (group.suite.astype(str) + "/" + group.task_id.astype(str)).to_numpy()
        repeats = group[REPEAT_KEY].to_numpy() if REPEAT_KEY in group else None
        success = estimate(group.success_drop.to_numpy(), tasks, repeats=repeats)
        score = estimate(group.score_drop.to_numpy(), tasks, repeats=repeats)
        rows.append({
            **dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
            "n": len(group), "tasks": success.clusters,
            "success_drop": success.mean, "success_drop_se": success.se,
            # a drop in a success rate lies in [-1, 1]: the t interval is cut to it
            "ci_low": max(success.ci_low, -1.0), "ci_high": min(success.ci_high, 1.0),
            "score_drop": score.mean, "score_drop_se": score.se,
            "trajectory_change": group.trajectory_change.mean(),
            "identical_repeats": success.repeats,
            "excluded_errors": len(cell) - len(group),
        })
    return pd.DataFrame(rows, columns=columns)


def excluded_note(influence: pd.DataFrame) -> str | None:
    """One line saying how many pairs the influence left out for an error outcome, or None."""
    if influence.empty or "excluded_errors" not in influence:
        return None
    excluded = int(influence.excluded_errors.sum())
    if not excluded:
        return None
    cells = int((influence.excluded_errors > 0).sum())
    return (f"{excluded} ablation pair(s) in {cells} cell(s) left out of the influence: their "
            "baseline or ablated episode ended in an error outcome (an infrastructure failure "
            "or an AblationError, not the model's doing)")


def influence_map(influence: pd.DataFrame, value: str = "score_drop") -> pd.DataFrame:
    """Shards x models matrix of ``value`` (rows: suite/task/shard; columns: model)."""
    if influence.empty:
        return pd.DataFrame()
    return influence.pivot_table(index=["suite", "task_id", "shard"], columns="model",
                                 values=value, aggfunc="mean")


POOLED_BY = ("suite", "shard", "model", "scaffold", "mode")  # a shard name across a suite's tasks


def pooled_influence(pairs: pd.DataFrame) -> pd.DataFrame:
    """:func:`shard_influence` of each shard name over the tasks that declare it (``POOLED_BY``),
    for names measured on two or more tasks: HumanEval's ``examples``, a control suite's
    ``code`` note. At temperature 0 with one seed a task's cell is one pair with no interval;
    pooled, the interval is clustered by task. Empty where no name recurs."""
    pooled = shard_influence(pairs, by=POOLED_BY)
    return pooled[pooled.tasks >= 2].reset_index(drop=True) if not pooled.empty else pooled
