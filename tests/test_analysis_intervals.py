"""Intervals that mean what they say, shown by seeded simulation (vectorized numpy, so the
whole module runs in seconds): a success rate's interval stays inside [0, 1] and covers at
its level under clustering; the paired interval below 30 tasks agrees with the sign-flip
p-value in every comparison and covers at least 0.94 at 8, 12 and 20 tasks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from shardscope.analysis import stats


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    # Small matrix products on a shared 2-core machine: BLAS threads only oversubscribe.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def test_two_of_twelve_over_six_tasks_stays_inside_zero_one() -> None:
    # The case from review: `compare` printed 17% ± 17%, 95% CI [-26%, 60%].
    values = [1, 1] + [0] * 10
    tasks = [t for t in "abcdef" for _ in range(2)]
    est = stats.estimate(values, tasks)
    assert est.ci_low < 0  # the t interval leaves [0, 1]
    low, high = stats.rate_interval(est)
    assert 0 < low < est.mean < high < 1
    assert high - low >= est.ci_high - max(est.ci_low, 0) - 0.1  # as wide as clustering asks
    frame = pd.DataFrame({"suite": "s", "task_id": tasks, "model": "m", "scaffold": "x",
                          "outcome": ["success" if v else "failure" for v in values],
                          "score": values})
    row = stats.estimates(frame, "success").iloc[0]
    assert (row.ci_low, row.ci_high) == pytest.approx((low, high))


def test_a_rate_of_zero_is_bounded_by_the_number_of_tasks() -> None:
    est = stats.estimate([0.0] * 12, [t for t in "abcdef" for _ in range(2)])
    low, high = stats.rate_interval(est)
    assert low == 0.0
    # n_eff = 6 tasks (the design effect cannot be estimated): wider than for 12 independent
    assert high > stats.wilson(0.0, 12, 1.96)[1]


def _clustered_rates(rng: np.random.Generator, tasks: int, seeds: int, rate: float, icc: float,
                     simulations: int) -> tuple[np.ndarray, np.ndarray]:
    """Success 0/1 (simulations x tasks*seeds): each task's rate ~ Beta(mean rate, ICC icc)."""
    k = (1 - icc) / icc
    p = rng.beta(rate * k, (1 - rate) * k, size=(simulations, tasks))
    success = rng.random((simulations, tasks, seeds)) < p[:, :, None]
    labels = np.repeat(np.arange(tasks), seeds)
    return success.reshape(simulations, -1).astype(float), labels


@pytest.mark.parametrize(("tasks", "seeds", "rate", "icc"),
                         [(6, 2, 0.2, 0.3), (12, 3, 0.3, 0.2), (20, 2, 0.1, 0.1), (30, 3, 0.5, 0.4)])
def test_clustered_wilson_covers_and_stays_in_bounds(tasks: int, seeds: int, rate: float,
                                                     icc: float) -> None:
    rng = np.random.default_rng(11)
    values, labels = _clustered_rates(rng, tasks, seeds, rate, icc, 2000)
    covered, inside, t_covered = 0, True, 0
    for row in values:
        est = stats.estimate(row, labels)
        low, high = stats.rate_interval(est)
        inside &= 0 <= low <= high <= 1
        covered += low <= rate <= high
        t_covered += est.ci_low <= rate <= est.ci_high
    coverage = covered / len(values)
    assert inside
    print(f"{tasks} tasks x {seeds}, rate {rate}, ICC {icc}: clustered Wilson {coverage:.3f}, "
          f"t interval {t_covered / len(values):.3f}")
    assert coverage >= 0.93, (coverage, t_covered / len(values))


def _paired_differences(rng: np.random.Generator, kind: str, n: int, size: int
                        ) -> tuple[np.ndarray, float]:
    if kind == "normal":
        return rng.normal(0.15, 0.3, (size, n)), 0.15
    if kind == "heavy-tailed":
        return 0.15 + 0.2 * rng.standard_t(3, (size, n)), 0.15
    # Two models' success over 3 seeds per task; model a is 0.2 better on every task.
    p = rng.uniform(0.1, 0.7, (size, n))
    return (rng.binomial(3, p + 0.2) - rng.binomial(3, p)) / 3, 0.2


@pytest.mark.parametrize("tasks", [8, 12, 20])
@pytest.mark.parametrize("kind", ["normal", "heavy-tailed", "success over seeds"])
def test_sign_flip_interval_covers_and_agrees_with_the_test(tasks: int, kind: str) -> None:
    rng = np.random.default_rng(100 + tasks)
    d, truth = _paired_differences(rng, kind, tasks, 2000)
    signs, exact = stats.sign_flips(tasks, seed=0, resamples=2000)
    with one_blas_thread():
        low, high = stats.sign_flip_intervals(d, signs, exact, 0.05)
        p = stats.sign_flip_pvalues(d, signs, exact)
    coverage = float(np.mean((low <= truth) & (truth <= high)))
    print(f"{kind} at {tasks} tasks: coverage {coverage:.3f}")
    assert coverage >= 0.94, coverage
    excludes_zero = (low > 0) | (high < 0)
    assert np.array_equal(p < 0.05, excludes_zero)  # interval and p-value never disagree
    assert 0.08 < np.mean(excludes_zero) < 1  # above the 5% null rate: the test has power


def test_paired_comparison_interval_agrees_with_its_p_value() -> None:
    rng = np.random.default_rng(5)
    for _ in range(40):
        a, b = rng.binomial(2, 0.6, 10) / 2, rng.binomial(2, 0.4, 10) / 2
        c = stats.paired_comparison(a, b)
        assert (c.p_value < 0.05) == (c.ci_low > 0 or c.ci_high < 0), c
        assert "inverted" in c.method
        assert -1 <= c.ci_low <= c.diff <= c.ci_high <= 1


def test_too_few_tasks_to_reject_give_an_unbounded_interval() -> None:
    # 4 tasks: the smallest exact p-value is 2/16 > 0.05, so no difference is excluded.
    low, high = stats.sign_flip_interval(np.array([0.5, 0.6, 0.7, 0.8]))
    assert (low, high) == (-np.inf, np.inf)
