"""Benchmark scores: the unbiased pass@k estimator, BFCL's per-category accuracy, its
unweighted AST summary, and irrelevance shown beside the call rate on relevant items."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from shardscope.analysis.benchmarks import bfcl_scores, humaneval_scores, pass_at_k


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert pass_at_k(5, 4, 2) == 1.0  # fewer failures than k: every k-sample has a success


def _episodes(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "scaffold": "react-tools", "suite": s, "task_id": t,
                          "outcome": o, "tool_calls": c, "seed": 0, "ablation_shard": None}
                         for m, s, t, o, c in rows])


def test_never_calling_scores_full_irrelevance_and_zero_call_rate() -> None:
    rows = [("silent", "bfcl-simple", f"s{i}", "failure", 0) for i in range(4)]
    rows += [("silent", "bfcl-parallel", f"p{i}", "failure", 0) for i in range(2)]
    rows += [("silent", "bfcl-irrelevance", f"i{i}", "success", 0) for i in range(3)]
    rows += [("caller", "bfcl-simple", f"s{i}", "success" if i < 3 else "failure", 1)
             for i in range(4)]
    rows += [("caller", "bfcl-parallel", f"p{i}", "success" if i < 1 else "failure", 1)
             for i in range(2)]
    rows += [("caller", "bfcl-irrelevance", f"i{i}", "failure", 1) for i in range(3)]
    scores = bfcl_scores(_episodes(rows)).set_index(["model", "metric"])["mean"]
    assert scores["silent", "irrelevance"] == 1.0
    assert scores["silent", "call_rate_on_relevant"] == 0.0
    assert scores["caller", "call_rate_on_relevant"] == 1.0
    # the summary is the unweighted mean of the categories (0.75 and 0.5), not 4/6
    assert scores["caller", "ast_summary(simple+parallel)"] == pytest.approx(0.625)


def test_humaneval_pass_at_k_needs_enough_seeds() -> None:
    rows = []
    for seed in range(5):
        for task in range(3):
            ok = seed < task + 1  # task t passes on its first t+1 seeds
            rows.append({"model": "m", "scaffold": "s", "suite": "humaneval", "task_id": f"t{task}",
                         "outcome": "success" if ok else "failure", "seed": seed,
                         "ablation_shard": None, "tool_calls": 0})
    scores = humaneval_scores(pd.DataFrame(rows), ks=(1, 5, 10)).set_index("metric")["mean"]
    assert scores["pass@1 (seed 0)"] == 1.0
    assert scores["pass@1 (n=5)"] == pytest.approx((1 + 2 + 3) / 15)
    assert scores["pass@5 (n=5)"] == 1.0
    assert not any(m.startswith("pass@10") for m in scores.index)
