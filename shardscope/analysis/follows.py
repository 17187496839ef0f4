""""Follows the shard": when a replaced shard declares the answer it implies
(``implied_answer``), does the model's answer follow the replacement, keep the original, or
neither? (Knowledge-conflict studies such as ClashEval, Wu et al. 2024, measure this.)

The prior is the model's answer with the shard *removed* (same baseline): a model that
already answers right without the shard keeps it more often under a replacement.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from shardscope.analysis import stats
from shardscope.scaffolds.tasks.checks import answers_implied
from shardscope.scaffolds.tasks.model import Check, Shard
from shardscope.scaffolds.tasks.suite import Suite, Task

FOLLOW_COLUMNS = ["model", "episodes", "follow", "keep", "other", "follow_rate",
                  "follow_rate_prior_right", "follow_rate_prior_wrong", "follow_low",
                  "follow_high", "tasks", "prior_right", "prior_wrong"]
ShardLookup = Callable[[str, str, str], Shard | None]  # (suite, task_id, shard) -> the shard
TaskLookup = Callable[[str, str], Task | None]  # (suite, task_id) -> the task


def classify(pairs: pd.DataFrame, lookup: ShardLookup,
             checks: Callable[[str, str], Check | None]) -> pd.DataFrame:
    """Each replaced-shard pair (from :func:`shardscope.analysis.influence.ablation_pairs`)
    whose shard declares ``implied_answer``, with ``follows`` = follow | keep | other."""
    if pairs.empty:
        return pairs.assign(follows=[])
    replaced = pairs[pairs["mode"] == "replaced"]
    rows = []
    for r in replaced.itertuples():
        if isinstance(getattr(r, "excluded", None), str):
            continue  # an error outcome: no answer to follow or keep (see influence.ablation_pairs)
        shard, check = lookup(r.suite, r.task_id, r.shard), checks(r.suite, r.task_id)
        if shard is None or shard.implied_answer is None or check is None:
            continue
        answer = getattr(r, "final_answer", None)
        answer = answer if isinstance(answer, str) else None  # NaN: the episode gave none
        if answers_implied(check, shard.implied_answer, answer):
            label = "follow"
        elif r.outcome == "success":
            label = "keep"
        else:
            label = "other"
        rows.append({**r._asdict(), "follows": label})
    return pd.DataFrame(rows)


def follow_rates(classified: pd.DataFrame, prior: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per model: counts of follow / keep / other and the follow rate, split by the prior
    (``prior``: removed-shard pairs; right = that episode succeeded; see :func:`_priors`)
    where known."""
    if classified.empty:
        return pd.DataFrame(columns=FOLLOW_COLUMNS)
    data = classified
    if prior is not None and not prior.empty:
        data = data.merge(_priors(prior), on=["baseline_episode_key", "shard"], how="left")
    out = []
    for model, group in data.groupby("model", sort=True):
        counts = group.follows.value_counts()
        followed = (group.follows == "follow").to_numpy(dtype=float)
        clusters = group.task_id if "task_id" in group else None
        est = stats.estimate(followed, clusters)
        low, high = stats.rate_interval(est)
        row = {"model": model, "episodes": len(group),
               **{k: int(counts.get(k, 0)) for k in ("follow", "keep", "other")},
               "follow_rate": float(followed.mean()), "follow_low": low, "follow_high": high,
               "tasks": int(group.task_id.nunique()) if "task_id" in group else len(group)}
        for side, outcome in (("right", True), ("wrong", False)):
            if "prior_outcome" in group:
                known = group.prior_outcome.notna()
                part = group[known & ((group.prior_outcome == "success") == outcome)]
                row[f"follow_rate_prior_{side}"] = (
                    float((part.follows == "follow").mean()) if len(part) else float("nan"))
                row[f"prior_{side}"] = len(part)
            else:
                row[f"follow_rate_prior_{side}"] = float("nan")
                row[f"prior_{side}"] = 0
        out.append(row)
    return pd.DataFrame(out, columns=FOLLOW_COLUMNS)


def _priors(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each baseline x shard's prior: the outcome of its latest removed-shard episode that
    measured something (an error outcome says nothing of what the model knows). One row per
    baseline x shard, so an ablation run twice does not count a replaced answer twice."""
    removed = pairs[pairs["mode"] == "removed"]
    if "excluded" in removed:
        removed = removed[removed.excluded.isna()]
    if "started_at" in removed:
        removed = removed.sort_values("started_at", kind="stable")
    keys = ["baseline_episode_key", "shard"]
    return (removed.drop_duplicates(keys, keep="last")[[*keys, "outcome"]]
            .rename(columns={"outcome": "prior_outcome"}))


def task_lookups(task_of: TaskLookup) -> tuple[ShardLookup, Callable[[str, str], Check | None]]:
    """The shard and check lookups :func:`classify` takes, from one task lookup."""
    def shard(suite: str, task_id: str, name: str) -> Shard | None:
        task = task_of(suite, task_id)
        return next((s for s in task.shards if s.name == name), None) if task else None

    def check(suite: str, task_id: str) -> Check | None:
        task = task_of(suite, task_id)
        return task.check if task else None

    return shard, check


def follow_table(pairs: pd.DataFrame, task_of: TaskLookup, by: str = "model") -> pd.DataFrame:
    """Per ``by`` (a pairs column): follow / keep / other under a replaced shard declaring
    ``implied_answer``, the follow rate with its 95% interval (inside [0, 1], clustered by
    task) and the rate split by the prior. Empty when no replaced shard declares one."""
    if pairs.empty or "replaced" not in set(pairs["mode"]):
        return pd.DataFrame(columns=FOLLOW_COLUMNS)
    classified = classify(pairs, *task_lookups(task_of))
    if classified.empty:
        return pd.DataFrame(columns=FOLLOW_COLUMNS)
    grouped = pairs.assign(model=pairs[by])
    return follow_rates(classified.assign(model=classified[by]), grouped)


def suite_tasks(suites_dir: Path | str | None = None) -> TaskLookup:
    """A task lookup over the shipped suites and those in ``suites_dir``, loaded at the first
    lookup (:func:`follow_table` makes none where no shard was replaced)."""
    from shardscope.scaffolds.tasks.loader import load_suites

    suites: dict[str, Suite] | None = None

    def task_of(suite: str, task_id: str) -> Task | None:
        nonlocal suites
        if suites is None:
            suites = load_suites(suites_dir)
        found = suites.get(suite)
        return next((t for t in found.tasks if t.id == task_id), None) if found else None

    return task_of
