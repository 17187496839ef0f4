"""Agreement of likelihood attribution with outcome ablation: rank correlation over the cells
measured both ways, and sign agreement where the outcome effect is significant."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from shardscope.analysis.agreement import agreement


def _rows(deltas: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"model": "m", "scaffold": "react-tools", "suite": "s", "task_id": "t",
                          "shard": shard, "mode": "removed", "episode_id": f"e{k}",
                          "status": "scored", "delta_action_logp": d}
                         for shard, d in deltas.items() for k in range(2)])


def _influence(drops: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": "m", "scaffold": "react-tools", "suite": "s", "task_id": "t",
                          "shard": shard, "mode": "removed", "success_drop": drop,
                          "score_drop": drop, "ci_low": low, "ci_high": high}
                         for shard, (drop, low, high) in drops.items()])


def test_ranks_that_agree_correlate_and_signs_are_counted() -> None:
    found = agreement(_rows({"a": 8.0, "b": 2.0, "c": 0.1, "d": -1.0}),
                      _influence({"a": (0.9, 0.5, 1.0), "b": (0.4, 0.0, 0.8),
                                  "c": (0.1, -0.2, 0.3), "d": (-0.5, -0.9, -0.1)}))
    assert found.cells == 4 and found.spearman == pytest.approx(1.0)
    assert (found.significant, found.same_sign) == (2, 2)  # a and d exclude 0


def test_a_sign_disagreement_is_counted_and_too_few_cells_give_no_correlation() -> None:
    found = agreement(_rows({"a": -3.0, "b": 1.0}),
                      _influence({"a": (0.9, 0.5, 1.0), "b": (0.0, 0.0, 0.0), "x": (1.0, 1.0, 1.0)}))
    assert found.cells == 2 and math.isnan(found.spearman)  # x has no likelihood cell
    assert (found.significant, found.same_sign) == (1, 0)


def test_when_outcomes_never_vary_the_trajectory_change_is_ranked_instead() -> None:
    influence = _influence({"a": (0.0, 0.0, 0.0), "b": (0.0, 0.0, 0.0), "c": (0.0, 0.0, 0.0),
                            "d": (0.0, 0.0, 0.0)})
    found = agreement(_rows({"a": 6.0, "b": 3.0, "c": 0.5, "d": 1.0}),
                      influence.assign(trajectory_change=[0.9, 0.5, 0.0, 0.2]))
    assert math.isnan(found.spearman) and found.nonzero == 0  # no outcome moved
    assert found.trajectory_cells == 4 and found.trajectory_spearman == pytest.approx(1.0)
    reversed_ = agreement(_rows({"a": 6.0, "b": 3.0, "c": 0.5, "d": 1.0}),
                          influence.assign(trajectory_change=[0.0, 0.2, 0.9, 0.5]))
    assert reversed_.trajectory_spearman == pytest.approx(-1.0)


def test_the_outcome_ablation_cost_counts_each_episodes_own_shards() -> None:
    from shardscope.commands.attribute import ablation_episodes

    # Two episodes of two tasks, two shards each (four names in the suite), two modes, and
    # two steps each: outcome ablation runs 2 x 2 x 2 = 8 episodes, not 2 x 4 x 2 = 16.
    rows = pd.DataFrame([{"episode_id": e, "shard": f"{e}{k}", "mode": m, "span_id": f"{e}{step}"}
                         for e in ("a", "b") for k in range(2) for m in ("removed", "replaced")
                         for step in range(2)])
    assert ablation_episodes(rows) == 8
