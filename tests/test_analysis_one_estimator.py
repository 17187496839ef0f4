"""One estimator for a success rate with its error bars: on the same episodes, the Overview
page, the summary `shardscope run` prints, `shardscope compare` and its report give the same
interval (stats.estimate: SE clustered by task, CR1; t interval with tasks - 1 df).

The store is written by the real runner (scripted models, real OpenTelemetry SDK, real
DuckDB): two models, 10 tasks, 2 seeds each, so 20 episodes per model over 10 tasks.
"""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from streamlit.testing.v1 import AppTest

from shardscope.commands.compare import compare_command
from shardscope.commands.output import print_run_report
from shardscope.commands.run import summary_of
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Resources, Runner, RunReport
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes

ROOT = Path(__file__).resolve().parents[1]
TASKS = 10
# Successes out of the two seeds of each task t0..t9: seed 0 succeeds when >= 1, seed 1 when 2.
PLANTED = {"left": (2, 2, 2, 1, 1, 1, 0, 0, 2, 0), "right": (2, 1, 2, 2, 2, 1, 2, 0, 2, 1)}
SPEC = MatrixSpec(suites=("toy",), models=tuple(PLANTED), scaffolds=("react-tools",), seeds=2,
                  name="one-estimator")
T_975_9DF = float(sps.t.ppf(0.975, TASKS - 1))  # 95% interval, 10 tasks - 1 degrees of freedom


def _policy(model: str):
    def answer(messages: Any, tools: Any, config: Any) -> str:
        prompt = next(m.content for m in messages if m.role == "user")
        task = int(re.search(r"Task t(\d+):", prompt).group(1))
        right = PLANTED[model][task] > (config.seed or 0)
        return "Final Answer: 5" if right else "Final Answer: 6"

    return answer


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunReport]:
    path = tmp_path_factory.mktemp("one-estimator") / "store.duckdb"
    tracing = setup_tracing(Settings(db=path, flush_interval=0.1), strict=True)
    try:
        models = {m: TracedModel(ScriptedBackend(model=m, policy=_policy(m)), tracing, model_id=m)
                  for m in PLANTED}
        suite = fakes.Suite("toy", tuple(fakes.NamedTask(f"t{i}") for i in range(TASKS)))
        resources = Resources(suites={"toy": suite}, registry=fakes.Registry(),
                              open_model=lambda m: models[m], provider_of=lambda m: "scripted",
                              check=fakes.check, known_models=lambda: sorted(models))
        report = asyncio.run(Runner(tracing, resources, progress=False).run(SPEC))
    finally:
        tracing.shutdown()
    return path, report


def _by_hand(successes: tuple[int, ...]) -> tuple[float, float]:
    """The clustered Wilson interval computed here from the planted counts, not by shardscope:
    Wilson's interval on n / deff episodes, deff = CR1 variance / binomial variance (in
    [1, n / tasks]), with the t quantile on tasks - 1 df."""
    s, n = np.array(successes, dtype=float), np.full(len(successes), 2.0)
    total = n.sum()
    p = s.sum() / total
    se = math.sqrt(len(s) / (len(s) - 1) * np.sum((s - n * p) ** 2)) / total
    deff = min(max(se**2 / (p * (1 - p) / total), 1.0), total / len(s))
    m, z = total / deff, T_975_9DF
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    return centre - half, centre + half


def _overview_table(db: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Overview page's success table, as the real app renders it (AppTest)."""
    monkeypatch.setenv("SHARDSCOPE_DB", str(db))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (table,) = [d.value for d in at.dataframe if {"ci_low", "ci_high"} <= set(d.value.columns)]
    return table.set_index("model")


def _number(cell: Any) -> float:
    """A table cell as a number: the Overview formats rates as percent strings."""
    if isinstance(cell, str):
        return float(cell.rstrip("%")) / 100
    return float(cell)


def _intervals(text: str, label: str) -> list[str]:
    """The ``[low, high]`` cells printed on the row that names ``label``."""
    return [found for line in text.splitlines() if label in line
            for found in re.findall(r"\[\d+%, \d+%\]", line)]


def test_overview_cli_summary_compare_and_report_give_one_interval(
        ran: tuple[Path, RunReport], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db, report = ran
    store = Store(db)
    overview = _overview_table(db, monkeypatch)
    cli = summary_of(store, report.run_id).set_index("model")
    comparison = compare_command(store, Selection(), metric="success", alpha=0.05,
                                 correction="holm", report=tmp_path / "r.md", clusters=False,
                                 embedding="tfidf")
    compared = comparison.estimates.set_index("model")
    compare_out = capsys.readouterr().out
    print_run_report(report, cli.reset_index(), db)
    cli_out = capsys.readouterr().out
    markdown = (tmp_path / "r.md").read_text()
    for model, planted in PLANTED.items():
        low, high = _by_hand(planted)
        # right's t interval passed 1; the clustered Wilson interval stays inside [0, 1]
        assert 0 <= low < high <= 1 and cli.loc[model, "episodes"] == 20 and cli.loc[model, "tasks"] == 10
        for name, table in (("overview", overview), ("cli", cli), ("compare", compared)):
            shown = tuple(_number(table.loc[model, c]) for c in ("ci_low", "ci_high"))
            # the Overview shows its cells formatted to 0.1% ("27.0%", a dash when missing)
            tolerance = 5e-4 + 1e-9 if name == "overview" else 1e-9
            assert shown == pytest.approx((low, high), abs=tolerance), name
        printed = _intervals(cli_out, model)
        assert printed == _intervals(compare_out, f"{model} · react-tools")
        assert printed == [f"[{low:.0%}, {high:.0%}]"]
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {model} ·"))
        assert f"{low:.1%}" in row and f"{high:.1%}" in row
