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


def test_pooled_over_tasks_a_recurring_shard_gets_an_interval_and_its_sign() -> None:
    """One pair per task x shard cell (temperature 0, one seed) gives no cell an interval;
    pooled over the suite's tasks, the recurring ``code`` shard (every removal turns a success
    into a failure) is significant with the likelihood's sign, and ``noise`` (no outcome
    moves) is not. A shard name on one task only is not pooled."""
    from shardscope.analysis.agreement import pooled_agreement
    from shardscope.analysis.influence import shard_influence

    tasks = [f"t{k}" for k in range(6)]
    pairs = pd.DataFrame(
        [{"suite": "s", "task_id": t, "shard": shard, "model": "m", "scaffold": "react-tools",
          "mode": "removed", "base_success": 1.0, "ablated_success": 0.0 if shard == "code" else 1.0,
          "base_score": 1.0, "ablated_score": 0.0 if shard == "code" else 1.0,
          "trajectory_change": 0.5, "excluded": None}
         for t in tasks for shard in ("code", "noise")]
        + [{"suite": "s", "task_id": "t0", "shard": "once", "model": "m", "scaffold": "react-tools",
            "mode": "removed", "base_success": 1.0, "ablated_success": 0.0, "base_score": 1.0,
            "ablated_score": 0.0, "trajectory_change": 0.5, "excluded": None}])
    rows = pd.DataFrame([{"model": "m", "scaffold": "react-tools", "suite": "s", "task_id": t,
                          "shard": shard, "mode": "removed", "episode_id": f"{t}-{shard}",
                          "status": "scored", "delta_action_logp": d}
                         for t in tasks for shard, d in (("code", 11.0), ("noise", 0.1))]
                        + [{"model": "m", "scaffold": "react-tools", "suite": "s", "task_id": "t0",
                            "shard": "once", "mode": "removed", "episode_id": "t0-once",
                            "status": "scored", "delta_action_logp": 3.0}])
    per_task = agreement(rows, shard_influence(pairs))
    assert per_task.cells == 13 and per_task.significant == 0  # one pair: no interval
    pooled = pooled_agreement(rows, pairs)
    assert pooled is not None and pooled.cells == 2  # "once" is on one task: not pooled
    assert (pooled.significant, pooled.same_sign) == (1, 1)
    cells = pooled.table.set_index("shard")
    assert cells.loc["code", "likelihood"] == pytest.approx(11.0)
    assert cells.loc["code", "ci_low"] > 0 and cells.loc["noise", "outcome"] == 0
    flipped = pooled_agreement(rows.assign(delta_action_logp=-rows.delta_action_logp), pairs)
    assert flipped is not None and (flipped.significant, flipped.same_sign) == (1, 0)
    assert pooled_agreement(rows, pairs[pairs.shard == "once"]) is None
