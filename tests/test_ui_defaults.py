"""App and report defaults that hid the data from a newcomer (issue 17, item 10), on a
demo-like store whose latest run is an `ablate` run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from shardscope.analysis import svg
from shardscope.analysis.compare import compare
from shardscope.analysis.report import to_html
from shardscope.analysis.summaries import informative_pair
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store
from shardscope.ui import charts, widgets
from tests.demo_fixtures import QWEN, SMOL

ROOT = Path(__file__).resolve().parents[1]
LONG = f"{QWEN} · react-text"


def _app(db: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("SHARDSCOPE_DB", str(db))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_overview_after_ablate_shows_the_ablation_run(demo_store: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(demo_store, monkeypatch)
    assert not [i.value for i in at.info if "No episode matches" in i.value]
    assert next(c for c in at.checkbox if c.key == "overview_ablations").value
    assert any(m.label == "Episodes" and m.value == "12" for m in at.metric)  # the ablate run's


def test_compare_opens_on_the_most_informative_pair() -> None:
    systems = pd.DataFrame({
        "suite": "s", "model": ["m1", "m2", "m1", "m2"], "scaffold": ["a", "a", "b", "b"],
        "episodes": 4, "ablated": 0,
        "outcome_success": [0, 0, 0, 3], "outcome_failure": [4, 4, 4, 1],
        "outcome_protocol_error": 0, "outcome_budget_exhausted": 0, "outcome_error": 0})
    systems["system"] = systems.model + " · " + systems.scaffold
    # Scaffold a: both at 0%, failing alike (the least useful pair); b: 0% against 75%.
    assert informative_pair(systems) == ["m1 · b", "m2 · b"]
    same_rate = systems.assign(outcome_success=0, outcome_failure=[4, 2, 4, 4],
                               outcome_protocol_error=[0, 2, 0, 0])
    assert informative_pair(same_rate) == ["m1 · a", "m2 · a"]  # outcomes differ there


def test_chart_labels_are_whole_and_the_tool_legend_names_every_tool() -> None:
    summary = pd.DataFrame({"system": [LONG, f"{QWEN} · react-tools"], "success_rate": [0.5, 0.2],
                            "ci_low": [0.1, None], "ci_high": [0.9, None], "episodes": 4,
                            "tasks": 2, "success_se": 0.1})
    spec = charts.success_rates(summary, "system").to_dict()
    assert spec["layer"][0]["encoding"]["y"]["axis"]["labelLimit"] == 0
    profile = pd.DataFrame({"system": [LONG, LONG, SMOL, SMOL], "tool_name": ["sql", "calculator",
                            "read_doc", "search_docs"], "calls": [1, 2, 3, 4], "share": 0.5,
                            "error_rate": 0.0})
    tools = charts.tool_shares(profile).to_dict()
    assert tools["encoding"]["color"]["scale"]["domain"] == ["calculator", "read_doc", "search_docs", "sql"]
    assert tools["encoding"]["y"]["axis"]["labelLimit"] == 0
    forest = svg.forest([svg.Interval(LONG, 0.5, 0.1, 0.9)], title="t")
    assert f">{LONG}<" in forest.replace("&#x27;", "'")
    grid = svg.heatmap(["t0 · a (removed)"], [LONG], [[0.5]], title="t")
    assert f">{QWEN}<" in grid and ">react-text<" in grid


def test_interval_cells_show_a_dash() -> None:
    frame = pd.DataFrame({"ci_low": [0.25, None, float("nan")], "ci_high": [0.75, None, None]})
    shown = widgets.with_dashes(frame, ("ci_low", "ci_high"))
    assert list(shown.ci_low) == ["25.0%", "–", "–"] and list(shown.ci_high) == ["75.0%", "–", "–"]


def test_shards_page_intervals_are_dashes_not_none(demo_store: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(demo_store, monkeypatch, "app_pages/shards.py")
    ranking = next(d for d in at.dataframe if "success_drop" in d.value.columns).value
    assert ranking.ci_low.map(lambda v: isinstance(v, str)).all()
    assert "None" not in set(ranking.ci_low.astype(str)) and "–" in set(ranking.ci_low)


def test_report_summarizes_first_and_folds_the_detail(demo_store: Path) -> None:
    html = to_html(compare(Store(demo_store), Selection(), clusters=False))
    assert html.index("<h2>Summary</h2>") < html.index("<h2>Outcomes")
    assert f"{QWEN} · react-text: success 100.0%" in html
    assert "<details><summary>" in html
    first_fold = html.index("<details>")
    assert html.index("<h3>") > first_fold  # each pair's divergence rows are folded
