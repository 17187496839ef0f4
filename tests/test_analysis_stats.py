"""The statistics mean what they say: planted effects (and their absence) are recovered at
the advertised rates. Episodes are simulated at the frame level (thousands of comparisons
through the runner would take hours); the same functions read real stores in
tests/test_analysis_store.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shardscope.analysis import stats

ALPHA = 0.05


def simulate(rng: np.random.Generator, rates: dict[str, np.ndarray], seeds: int = 1) -> pd.DataFrame:
    """Episodes of scripted policies: model m succeeds on task i with probability rates[m][i]."""
    rows = []
    for model, p in rates.items():
        for task, rate in enumerate(p):
            for seed in range(seeds):
                success = rng.random() < rate
                rows.append({"suite": "sim", "task_id": f"t{task:03d}", "seed": seed,
                             "model": model, "scaffold": "react-tools",
                             "outcome": "success" if success else "failure",
                             "score": float(success)})
    return pd.DataFrame(rows)


def rejection_rate(rng: np.random.Generator, make_rates, simulations: int, seeds: int = 1) -> float:
    rejected = 0
    for _ in range(simulations):
        (comparison,) = stats.compare_systems(simulate(rng, make_rates(rng), seeds))
        rejected += comparison.p_value < ALPHA
    return rejected / simulations


def _slack(rate: float, n: int) -> float:
    return 2.5 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize(("tasks", "seeds"), [(60, 3), (12, 2)])
def test_null_same_policy_under_two_names_rejects_at_most_alpha(tasks: int, seeds: int) -> None:
    # Tasks differ in difficulty; both "models" are the same policy. 60 tasks: paired t;
    # 12 tasks: the exact sign-flip permutation test.
    rng = np.random.default_rng(7)

    def rates(r: np.random.Generator) -> dict[str, np.ndarray]:
        p = r.uniform(0.05, 0.95, tasks)
        return {"model-a": p, "model-b": p}

    rate = rejection_rate(rng, rates, 200, seeds)
    assert rate <= ALPHA + _slack(ALPHA, 200), rate


def test_power_at_the_minimum_detectable_effect() -> None:
    tasks, base = 80, 0.5
    mde = stats.mde_for_rates(tasks, base)
    assert 0.15 < mde < 0.3  # (t + t) * sqrt(2 p q / n) for these numbers: about 0.22
    rng = np.random.default_rng(11)

    def rates(r: np.random.Generator) -> dict[str, np.ndarray]:
        return {"model-a": np.full(tasks, base), "model-b": np.full(tasks, base + mde)}

    simulations = 1000
    power = rejection_rate(rng, rates, simulations)
    # 80% by construction: at least that, within the simulation's own sampling error.
    assert power >= 0.80 - _slack(0.8, simulations), power
    # ...and the MDE is not a loose bound: half of it is detected far less often.

    def half(r: np.random.Generator) -> dict[str, np.ndarray]:
        return {"model-a": np.full(tasks, base), "model-b": np.full(tasks, base + mde / 2)}

    assert rejection_rate(rng, half, 300) < 0.5


def test_the_observed_mde_matches_the_planning_formula() -> None:
    rng = np.random.default_rng(3)
    frame = simulate(rng, {"a": np.full(400, 0.5), "b": np.full(400, 0.5)})
    (c,) = stats.compare_systems(frame)
    # Independent 50% outcomes: Var(a - b) = 0.25 + 0.25.
    assert c.mde == pytest.approx(stats.minimum_detectable_effect(math.sqrt(0.5), 400), rel=0.1)
    assert c.mde == pytest.approx(stats.mde_for_rates(400, 0.5), rel=0.1)


def test_seeds_are_averaged_per_task_and_errors_clustered() -> None:
    # Two tasks, each repeated 50 times with identical outcomes: 100 episodes, but only two
    # independent draws. A naive SE would be sqrt(.25/100) = 5%; clustered it is 50%.
    frame = pd.DataFrame({"suite": "s", "task_id": ["t1"] * 50 + ["t2"] * 50, "model": "m",
                          "scaffold": "x", "outcome": ["success"] * 50 + ["failure"] * 50,
                          "score": [1.0] * 50 + [0.0] * 50, "seed": list(range(50)) * 2})
    row = stats.estimates(frame).iloc[0]
    assert row["mean"] == 0.5 and row["tasks"] == 2 and row["episodes"] == 100
    assert row["se"] == pytest.approx(0.5) and bool(row["clustered"])


def test_clustered_se_equals_the_plain_se_with_one_episode_per_task() -> None:
    x = np.array([1.0, 0, 1, 1, 0, 1, 0, 0, 1, 1])
    se, clustered = stats.clustered_se(x, np.arange(10))
    assert clustered and se == pytest.approx(x.std(ddof=1) / math.sqrt(10))


def test_small_samples_use_the_exact_permutation_test() -> None:
    a = np.array([1.0, 1, 1, 1, 1, 1])
    b = np.zeros(6)
    c = stats.paired_comparison(a, b)
    # Every task favours a: of the 2^6 sign flips only all-plus and all-minus are as extreme.
    assert c.method.startswith("sign-flip permutation (exact)")
    assert c.p_value == pytest.approx(2 / 64) and c.diff == 1.0
    # Inverting the test: every shift but 1 leaves six equal values, rejected at p = 2/64.
    assert (c.ci_low, c.ci_high) == pytest.approx((1.0, 1.0), abs=1e-6)


def test_too_few_tasks_for_any_detectable_effect() -> None:
    # With 4 tasks the smallest exact p-value is 2/16 > 0.05: no difference is detectable.
    c = stats.paired_comparison(np.array([1.0, 1, 1, 1]), np.zeros(4))
    assert c.p_value == pytest.approx(2 / 16) and math.isinf(c.mde) and not c.significant


def test_identical_results_are_not_different() -> None:
    c = stats.paired_comparison(np.ones(40), np.ones(40))
    assert (c.diff, c.p_value, c.se) == (0.0, 1.0, 0.0)


def test_too_few_shared_tasks_give_no_test() -> None:
    c = stats.paired_comparison(np.array([1.0, np.nan]), np.array([0.0, 1.0]))
    assert c.tasks == 1 and math.isnan(c.p_value) and c.method == "too few paired tasks"


def test_holm_and_bh_adjustments() -> None:
    p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    assert stats.adjust_pvalues(p, "holm")[:3] + stats.adjust_pvalues(p, "holm")[4:] == \
        pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(stats.adjust_pvalues(p, "holm")[3])
    assert stats.adjust_pvalues(p, "bh")[:3] == pytest.approx([0.02, 0.04, 0.04])
    with pytest.raises(ValueError, match="unknown correction"):
        stats.adjust_pvalues(p, "bonferonni")


def test_many_pairs_are_corrected() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.2, 0.8, 50)
    frame = simulate(rng, {"a": p, "b": p, "c": np.clip(p + 0.4, 0, 1)})
    comparisons = stats.compare_systems(frame)
    assert [(c.a, c.b) for c in comparisons] == [("a · react-tools", "b · react-tools"),
                                                 ("a · react-tools", "c · react-tools"),
                                                 ("b · react-tools", "c · react-tools")]
    assert all(c.p_adjusted >= c.p_value for c in comparisons)
    assert [c.significant for c in comparisons] == [False, True, True]
    assert comparisons[1].diff < 0 and comparisons[1].ci_high < 0


def test_weighted_estimate_equals_the_expanded_episodes() -> None:
    # The Overview's cube holds counts: a row of weight w stands for w identical episodes.
    values, tasks, weights = [0.0, 1.0, 1.0, 0.0, 1.0], ["t0", "t1", "t2", "t2", "t3"], [4, 4, 3, 1, 2]
    expanded = stats.estimate(np.repeat(values, weights), np.repeat(tasks, weights))
    weighted = stats.estimate(values, tasks, weights=weights)
    assert (weighted.n, weighted.clusters, weighted.clustered) == (14, 4, True)
    for field in ("mean", "se", "ci_low", "ci_high"):
        assert getattr(weighted, field) == pytest.approx(getattr(expanded, field))
    # one task: the plain SE over its 4 episodes, sqrt(p(1-p)/(n-1)) for a rate
    single = stats.estimate([1.0, 0.0], ["t0", "t0"], weights=[3, 1])
    assert not single.clustered and single.se == pytest.approx(math.sqrt(0.75 * 0.25 / 3))
    assert stats.estimate([1.0], weights=[0]).n == 0  # zero weight: no episode


@pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning")
def test_estimates_grouped_by_one_column_keep_scalar_keys() -> None:
    # Grouping by a one-element list warns that pandas will make the keys 1-tuples; the
    # estimates must neither warn nor end up with tuples in their group column.
    frame = simulate(np.random.default_rng(3), {"a": np.full(30, 0.9), "b": np.full(30, 0.1)})
    out = stats.estimates(frame, by=("model",))
    assert out.model.tolist() == ["a", "b"]
    by_hand = frame.assign(win=frame.outcome == "success").groupby("model").win.mean()
    assert out.set_index("model")["mean"].to_dict() == pytest.approx(by_hand.to_dict())
    assert out.episodes.tolist() == [30, 30]
