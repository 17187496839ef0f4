"""The full benchmark run's bookkeeping (bench/_sample.py): its order makes every prefix a
proportional sample, its results file resumes, and its intervals shrink to the point when
a suite is complete."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import _sample
from shardscope.analysis.stats import wilson

SUITES = {"simple": [f"s{i}" for i in range(40)], "parallel": [f"p{i}" for i in range(20)],
          "irrelevance": [f"i{i}" for i in range(24)]}


def test_every_prefix_is_proportional_and_the_order_is_seeded() -> None:
    order = _sample.stratified_order(SUITES, seed=13)
    assert sorted(order) == sorted((s, t) for s, ids in SUITES.items() for t in ids)
    total = len(order)
    for k in range(1, total + 1):
        counts = Counter(suite for suite, _ in order[:k])
        for suite, ids in SUITES.items():
            assert abs(counts[suite] - k * len(ids) / total) <= 1.0, (k, suite)
    assert _sample.stratified_order(SUITES, seed=13) == order
    assert _sample.stratified_order(SUITES, seed=14) != order


def test_results_resume_by_scaffold_hash(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    rows = [{"model": "m", "suite": "simple", "task_id": "s1", "scaffold_hash": "h1",
             "outcome": "success", "wall_s": 2.0},
            {"model": "m", "suite": "simple", "task_id": "s2", "scaffold_hash": "h0",
             "outcome": "failure", "wall_s": 4.0}]
    assert _sample.append_results(path, rows) == 2
    read = _sample.read_results(path)
    assert read == rows
    assert _sample.done_keys(read, "h1") == {("m", "simple", "s1")}  # s2 ran under another hash


def test_a_corrupt_results_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"model": "m"}\n{"model": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"results\.jsonl:2: not JSON"):
        _sample.read_results(path)


def test_interval_is_wilson_far_from_complete_and_a_point_when_complete() -> None:
    big = _sample.Cell("m", "s", done=10, total=10**9, successes=4, wall_s=10.0)
    low, high = big.interval()
    w_low, w_high = wilson(0.4, 10, 1.96)
    assert low == pytest.approx(w_low, abs=1e-6) and high == pytest.approx(w_high, abs=1e-6)
    half = _sample.Cell("m", "s", done=10, total=20, successes=4, wall_s=10.0)
    assert half.interval()[1] - half.interval()[0] < high - low  # the finite population
    done = _sample.Cell("m", "s", done=20, total=20, successes=8, wall_s=10.0)
    assert done.interval() == (0.4, 0.4)
    assert half.remaining_h == pytest.approx(10 / 10 * 10 / 3600)


def test_an_unknown_model_is_refused_before_any_run(tmp_path: Path) -> None:
    """A misspelt model id stops the bench with one line naming the known ids; the results
    file is not touched (it used to start child runs that each failed on a missing entry)."""
    import subprocess
    import sys

    results = tmp_path / "results.jsonl"
    results.write_text('{"kept": 1}\n')
    script = Path(__file__).resolve().parents[1] / "bench" / "benchmarks_full.py"
    done = subprocess.run([sys.executable, str(script), "--full", "--models",
                           "smollm2-360m-instruct", "--results", str(results)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "smollm2-360m-instruct not in the catalog's local models" in lines[0], lines
    assert "smollm2-135m-instruct" in lines[0] and "Traceback" not in done.stderr
    assert results.read_text() == '{"kept": 1}\n'


def test_parts_cover_the_order_once_and_a_bad_part_is_one_line() -> None:
    """``--part I/N`` splits the order into N disjoint strides that together hold every item
    once; a malformed or out-of-range part stops with a message naming the option."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "bench" / "benchmarks_full.py"
    spec = importlib.util.spec_from_file_location("benchmarks_full", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    order = [("s", str(k)) for k in range(11)]
    parts = [bench.part_of(f"{i}/3") for i in range(3)]
    assert parts == [(0, 3), (1, 3), (2, 3)]
    taken = [item for index, count in parts for item in order[index::count]]
    assert sorted(taken) == sorted(order) and len(taken) == len(order)
    assert bench.part_of(None) == (0, 1)
    for bad in ("2", "a/b", "3/3", "-1/2", "0/0"):
        with pytest.raises(SystemExit, match="--part"):
            bench.part_of(bad)
