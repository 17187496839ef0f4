"""Scores as the benchmarks define them, with clustered error bars (tasks are the clusters).

- **BFCL**: accuracy per category (suite ``bfcl-<category>``); the non-live AST summary as
  BFCL's leaderboard computes it, the unweighted mean of the simple, multiple, parallel and
  parallel_multiple accuracies (BFCL's "simple" also averages Java and JavaScript, which
  are not imported here); and irrelevance shown beside the relevant categories' call rate,
  so that "never calls a function" (100% irrelevance, 0% elsewhere) cannot look good.
- **HumanEval**: pass@1 (the mean success of the first seed; temperature 0 makes it the
  greedy pass@1), and pass@k by the unbiased estimator of Chen et al. (2021),
  ``1 - C(n-c, k) / C(n, k)`` per problem, averaged, when each problem ran n >= k seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from shardscope.analysis.stats import Estimate, estimate, finished

BFCL_PREFIX = "bfcl-"
AST_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple")
HUMANEVAL = "humaneval"
SYSTEM = ["model", "scaffold"]


def category_of(suite: str) -> str | None:
    """The BFCL category of a suite name (``bfcl-parallel-multiple`` -> parallel_multiple)."""
    if not suite.startswith(BFCL_PREFIX):
        return None
    return suite[len(BFCL_PREFIX):].replace("-", "_")


def _baseline(episodes: pd.DataFrame) -> pd.DataFrame:
    """Finished episodes without an ablation."""
    done = finished(episodes)
    if "ablation_shard" in done:
        done = done[done["ablation_shard"].isna()]
    return done


def _row(label: str, est: Estimate) -> dict[str, object]:
    return {"metric": label, "mean": est.mean, "se": est.se, "ci_low": est.ci_low,
            "ci_high": est.ci_high, "tasks": est.clusters, "episodes": est.n}


def bfcl_scores(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per system (model, scaffold): each category's accuracy, the AST summary, the
    irrelevance accuracy and the relevant categories' call rate, each with a clustered SE."""
    done = _baseline(episodes)
    done = done.assign(category=done["suite"].map(category_of)).dropna(subset=["category"])
    rows = []
    for (model, scaffold), group in done.groupby(SYSTEM, sort=True):
        success = (group["outcome"] == "success").astype(float)
        clusters = group["suite"] + "/" + group["task_id"]
        for category, part in group.groupby("category", sort=False):
            rows.append({"model": model, "scaffold": scaffold, **_row(
                str(category), estimate(success[part.index], clusters[part.index]))})
        summary = _ast_summary(group, success, clusters)
        if summary is not None:
            rows.append({"model": model, "scaffold": scaffold, **summary})
        relevant = group[group["category"] != "irrelevance"]
        if not relevant.empty and (group["category"] == "irrelevance").any():
            called = (relevant["tool_calls"].fillna(0) > 0).astype(float)
            rows.append({"model": model, "scaffold": scaffold,
                         **_row("call_rate_on_relevant", estimate(called, clusters[relevant.index]))})
    return pd.DataFrame(rows)


def _ast_summary(group: pd.DataFrame, success: pd.Series, clusters: pd.Series) -> dict[str, object] | None:
    """The unweighted mean of the AST categories' accuracies: each task weighs 1/(its
    category's size x number of categories), so the clustered SE is the weighted one."""
    present = [c for c in AST_CATEGORIES if (group["category"] == c).any()]
    if len(present) < 2:
        return None
    part = group[group["category"].isin(present)]
    # each category contributes equally whatever its size: weight episodes by 1/size
    sizes = part.groupby("category")["task_id"].transform("size").astype(float)
    weights = 1.0 / sizes
    values = success[part.index].to_numpy()
    mean = float(np.sum(weights * values) / np.sum(weights))
    # SE of a weighted mean of independent category means: sqrt(sum se_c^2) / C
    ses = [estimate(success[part.index[part["category"] == c]],
                    clusters[part.index[part["category"] == c]]).se for c in present]
    se = math.sqrt(sum(s * s for s in ses)) / len(present)
    label = "ast_summary(" + "+".join(present) + ")"
    return {"metric": label, "mean": mean, "se": se, "ci_low": mean - 1.96 * se,
            "ci_high": mean + 1.96 * se, "tasks": int(part["task_id"].nunique()),
            "episodes": len(part)}


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one problem with ``c`` of ``n`` samples correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def humaneval_scores(episodes: pd.DataFrame, ks: Sequence[int] = (1, 5, 10)) -> pd.DataFrame:
    """Per system: pass@1 (first seed) and, when every problem ran at least k seeds, the
    unbiased pass@k over all seeds; SEs clustered by problem."""
    done = _baseline(episodes)
    done = done[done["suite"] == HUMANEVAL]
    rows = []
    for (model, scaffold), group in done.groupby(SYSTEM, sort=True):
        first = group[group["seed"] == group["seed"].min()]
        ok = (first["outcome"] == "success").astype(float)
        rows.append({"model": model, "scaffold": scaffold,
                     **_row("pass@1 (seed 0)", estimate(ok, first["task_id"]))})
        per_task = group.groupby("task_id")["outcome"].agg(
            n="size", c=lambda s: int((s == "success").sum()))
        for k in ks:
            if k == 1 and per_task["n"].min() == 1:
                continue
            if per_task["n"].min() < k:
                break
            values = [pass_at_k(int(n), int(c), k) for n, c in per_task[["n", "c"]].to_numpy()]
            rows.append({"model": model, "scaffold": scaffold,
                         **_row(f"pass@{k} (n={int(per_task['n'].min())})",
                                estimate(values, list(per_task.index)))})
    return pd.DataFrame(rows)
