"""Agreement between likelihood attribution and outcome ablation on the same shards: the rank
correlation (Spearman) of a shard's likelihood influence (mean Δ log p of the action) and its
outcome influence (success drop, or score drop when success never varies), over model ·
scaffold x task x shard x mode cells measured both ways; and, where outcome ablation's 95%
interval excludes zero, whether likelihood attribution has the same sign. Where outcomes barely
vary (models that fail every task), the rank correlation with the trajectory change (how far
the ablated episode's actions moved) says whether the shards that move the log p of the
action most are the ones whose removal changes what the model does.

At temperature 0 with one seed a task x shard cell is one pair, with no interval, so no cell
can be significant. Pooled over tasks (``keys=POOLED_KEYS``, the influence from
:func:`shardscope.analysis.influence.pooled_influence`), a shard name that recurs across a
suite's tasks (HumanEval's ``examples``, a control suite's ``code`` note) is one cell with an
interval clustered by task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

KEYS = ["model", "scaffold", "suite", "task_id", "shard", "mode"]
POOLED_KEYS = [k for k in KEYS if k != "task_id"]  # a shard name across a suite's tasks


@dataclass(frozen=True)
class Agreement:
    cells: int  # cells measured both ways
    spearman: float  # NaN with fewer than 3 cells or a constant side
    p_value: float
    significant: int  # cells where the outcome interval excludes 0
    same_sign: int  # of those, where the likelihood delta has the outcome's sign
    outcome_value: str
    table: pd.DataFrame
    nonzero: int = 0  # cells whose outcome influence is not exactly 0
    trajectory_spearman: float = float("nan")  # with the mean trajectory change
    trajectory_cells: int = 0


def agreement(rows: pd.DataFrame, influence: pd.DataFrame, keys: list[str] = KEYS) -> Agreement:
    """``rows``: attributions with a ``scaffold`` column (scored rows are used);
    ``influence``: :func:`shardscope.analysis.influence.shard_influence`, grouped by ``keys``
    (``POOLED_KEYS``: :func:`~shardscope.analysis.influence.pooled_influence`). A cell's
    likelihood influence is the mean over its episodes of each episode's summed Δ log p of
    the action."""
    scored = rows[rows.status == "scored"]
    likelihood = (scored.groupby([*keys, "episode_id"])["delta_action_logp"].sum()
                  .groupby(keys).mean().rename("likelihood").reset_index())
    value = "success_drop"
    if not influence.empty and influence[value].abs().sum() == 0:
        value = "score_drop"
    trajectory = influence.get("trajectory_change", np.nan)
    outcome = (influence.assign(trajectory=trajectory)[[*keys, value, "ci_low", "ci_high", "trajectory"]]
               .rename(columns={value: "outcome"}))
    both = likelihood.merge(outcome, on=keys, how="inner").dropna(subset=["likelihood", "outcome"])
    rho, p = _spearman(both.likelihood, both.outcome)
    moved = both.dropna(subset=["trajectory"])
    trajectory_rho, _ = _spearman(moved.likelihood, moved.trajectory)
    significant = both[(both.ci_low > 0) | (both.ci_high < 0)] if value == "success_drop" else both.iloc[0:0]
    same = int((np.sign(significant.likelihood) == np.sign(significant.outcome)).sum())
    return Agreement(len(both), rho, p, len(significant), same, value, both,
                     int((both.outcome != 0).sum()), trajectory_rho, len(moved))


def pooled_agreement(rows: pd.DataFrame, pairs: pd.DataFrame) -> Agreement | None:
    """:func:`agreement` over shard names that recur across tasks (``POOLED_KEYS``), from
    :func:`shardscope.analysis.influence.ablation_pairs`; None where no shard name is
    measured on two or more tasks (each pooled cell would be a task's own cell)."""
    from shardscope.analysis.influence import pooled_influence

    influence = pooled_influence(pairs)
    return agreement(rows, influence, POOLED_KEYS) if not influence.empty else None


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Spearman's rho and its p-value; NaN with fewer than 3 cells or a constant side."""
    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:
        return float("nan"), float("nan")
    result = sps.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)
