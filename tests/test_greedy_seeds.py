"""Seeds at temperature 0 (issue 17, item 6): `run` says extra seeds repeat the same work,
and the error bars count byte-identical repeats of a task once."""

from __future__ import annotations

import math

import pandas as pd

from shardscope.analysis import stats
from shardscope.commands.run import greedy_seeds_warning
from shardscope.scaffolds.runner.matrix import MatrixSpec


def test_identical_repeats_are_not_independent_evidence() -> None:
    # Three byte-identical seeds of one task: one observation, not three. Counted as three,
    # the plain SE is 0 and the interval [1, 1] claims certainty from one episode's work.
    naive = stats.estimate([1.0, 1.0, 1.0], ["t0"] * 3)
    assert naive.n == 3 and naive.se == 0.0
    honest = stats.estimate([1.0, 1.0, 1.0], ["t0"] * 3, repeats=["x", "x", "x"])
    assert (honest.n, honest.repeats) == (1, 2) and math.isnan(honest.se)


def test_repeats_across_tasks_keep_the_clustered_estimate() -> None:
    # With several tasks the CR1 SE treats each task as one unit: duplicated rows within a
    # task leave it unchanged, so repeats are only counted (the mean stays the task mean).
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    tasks = ["t0", "t0", "t1", "t1", "t2", "t2"]
    keys = ["a", "b", "a", "a", "a", "a"]  # t0's seeds differ; t1's and t2's repeat
    est = stats.estimate(values, tasks, repeats=keys)
    plain = stats.estimate(values, tasks)
    assert (est.n, est.clusters, est.repeats) == (6, 3, 2)
    assert (est.mean, est.se, est.ci_low) == (plain.mean, plain.se, plain.ci_low)


def test_estimates_use_the_repeat_key_column() -> None:
    episodes = pd.DataFrame({
        "model": "m", "scaffold": "s", "suite": "toy", "task_id": ["t0", "t0", "t1", "t1"],
        "outcome": ["success", "success", "failure", "failure"], "score": [1.0, 1.0, 0.0, 0.0],
        stats.REPEAT_KEY: [stats.repeat_key(["same"], "success", "5")] * 2
        + [stats.repeat_key(["other"], "failure", "6")] * 2,
    })
    row = stats.estimates(episodes).iloc[0]
    assert (row.episodes, row.tasks, row.identical_repeats) == (4, 2, 2)
    assert stats.repeat_key(["a"], "success", "5") != stats.repeat_key(["b"], "success", "5")


def test_run_warns_about_seeds_at_temperature_zero() -> None:
    spec = MatrixSpec(suites=("arithmetic",), models=("m",), scaffolds=("react-text",), seeds=3)
    warning = greedy_seeds_warning(spec)
    assert warning is not None and "--seeds 3 at temperature 0 (react-text)" in warning
    assert "-p react-text.temperature=0.7" in warning
    sampled = MatrixSpec(suites=("arithmetic",), models=("m",), scaffolds=("react-text",), seeds=3,
                         scaffold_params={"react-text": {"temperature": 0.7}})
    assert greedy_seeds_warning(sampled) is None
    single = MatrixSpec(suites=("arithmetic",), models=("m",), scaffolds=("react-text",), seeds=1)
    assert greedy_seeds_warning(single) is None
