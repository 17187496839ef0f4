"""Follow rates on real stores (real runner, scripted model, real DuckDB): the prior of a
replaced shard is its removed-shard episode, which must be a measurement (not an error
outcome), and must be counted once even when the ablation was run twice over the same
baselines. The model reads "a is N" and answers N + 3; replacing a by 7 implies 10
(tests/analysis_fixtures.dependence_suite)."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shardscope.analysis import follows
from shardscope.analysis.compare import ablation_detail
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx

TASKS = 2
SPEC = MatrixSpec(
    suites=("toy",),
    models=("reader",),
    scaffolds=("react-tools",),
    seeds=1,
    ablations="both",
    name="follows",
)


def _user(messages: Sequence[Any]) -> str:
    return next(m.content for m in messages if m.role == "user")


def reader(messages: Sequence[Any], tools: Any, config: Any) -> str:
    found = re.search(r"\ba is (\d+)", _user(messages))
    return f"Final Answer: {int(found.group(1)) + 3}" if found else "Final Answer: unknown"


def down_without_a(messages: Sequence[Any], tools: Any, config: Any) -> str:
    if re.search(r"\ba is (\d+)", _user(messages)) is None:
        raise RuntimeError("backend down after retries")  # an infrastructure error
    return reader(messages, tools, config)


def _build(path: Path, policy: Any, specs: Sequence[MatrixSpec]) -> Path:
    tracing = setup_tracing(Settings(db=path, flush_interval=0.1), strict=True)
    try:
        model = TracedModel(
            ScriptedBackend(model="reader", policy=policy), tracing, model_id="reader"
        )
        for spec in specs:
            asyncio.run(
                Runner(tracing, fx._resources({"reader": model}, TASKS), progress=False).run(spec)
            )
    finally:
        tracing.shutdown()
    return path


def _follow_rates(db: Path, suites: Path) -> tuple[Any, Any]:
    _, pairs = ablation_detail(Store(db), Selection())
    table = follows.follow_table(pairs, follows.suite_tasks(suites))
    (row,) = table.itertuples()
    return pairs, row


def test_an_error_prior_is_unknown_not_wrong(tmp_path: Path) -> None:
    # every removed-a episode ends in an error: the replaced-a answers have no prior
    db = _build(tmp_path / "errors.duckdb", down_without_a, [SPEC])
    pairs, row = _follow_rates(db, fx.dependence_suite(tmp_path / "suites"))
    removed_a = pairs[(pairs["shard"] == "a") & (pairs["mode"] == "removed")]
    assert (removed_a.outcome == "error").all() and removed_a.excluded.notna().all()
    # replaced a (answers 10): follow, prior unknown; replaced b (answers 5): keep, prior
    # right (removed b still answers 5)
    assert (row.episodes, row.follow, row.keep) == (2 * TASKS, TASKS, TASKS)
    assert row.prior_right == TASKS and row.follow_rate_prior_right == 0.0
    assert row.prior_wrong == 0 and math.isnan(row.follow_rate_prior_wrong)


def test_an_ablation_run_twice_counts_each_answer_once(tmp_path: Path) -> None:
    again = replace(SPEC, reuse_baselines=True, name="follows again")
    db = _build(tmp_path / "twice.duckdb", reader, [SPEC, again])
    pairs, row = _follow_rates(db, fx.dependence_suite(tmp_path / "suites"))
    replaced = pairs[pairs["mode"] == "replaced"]
    assert len(replaced) == 2 * 2 * TASKS  # two runs x shards a, b x tasks
    # each replaced episode once: not once per removed episode of its baseline
    assert (row.episodes, row.follow, row.keep, row.other) == (4 * TASKS, 2 * TASKS, 2 * TASKS, 0)
    # removed a: "unknown" (wrong), and then the model follows; removed b: right, it keeps
    assert (row.prior_wrong, row.follow_rate_prior_wrong) == (2 * TASKS, 1.0)
    assert (row.prior_right, row.follow_rate_prior_right) == (2 * TASKS, 0.0)


@pytest.fixture(autouse=True)
def _no_suites_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARDSCOPE_SUITES_DIR", raising=False)
