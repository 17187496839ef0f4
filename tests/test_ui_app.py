"""Every page of the real app through ``streamlit.testing`` on fixture stores written by the
real runner: what each page shows, its interactions, empty/missing/unreadable stores, and a
run writing while the app reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from shardscope.tracer.queries.episodes import episode_table
from shardscope.tracer.queries.filters import EpisodeFilter
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from shardscope.ui.charts import OUTCOME_COLORS
from tests import ui_fixtures as F
from tests.helpers.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "ui" / "app.py"
PAGES = ("app_pages/overview.py", "app_pages/runs.py", "app_pages/trace.py", "app_pages/sql.py",
         "app_pages/compare.py", "app_pages/shards.py")


def open_app(db: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None,
             query: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("SHARDSCOPE_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update(query or {})
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest, sidebar: bool = False) -> dict[str, str]:
    where = at.sidebar if sidebar else at.main
    return {m.label: m.value for m in where.metric}


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def frame(at: AppTest, *columns: str):
    """The first table shown with these columns (display-only tables carry no key)."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no table with columns {columns}")


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


def episode_id(db: Path, **where: str) -> str:
    flt = EpisodeFilter(**{k: (v,) for k, v in where.items()})
    return episode_table(Store(db), flt, limit=1).rows.episode_id[0]


# --- overview -------------------------------------------------------------------------------
# The outcome of every episode of a model on a task, whatever the scaffold and seed (the
# fixture's policies, tests/ui_fixtures.py): each heatmap cell holds 2 episodes (2 seeds).
TASK_OUTCOMES = {"alpha": {"t0": "success", "t1": "success", "t2": "success"},
                 "beta": {"t0": "failure", "t1": "protocol_error", "t2": "budget_exhausted"},
                 "gamma": {"t0": "error", "t1": "success", "t2": "success"}}
CELL_OUTCOMES = {(f"{model} · {scaffold}", f"toy/{task}"): outcome
                 for model, tasks in TASK_OUTCOMES.items() for task, outcome in tasks.items()
                 for scaffold in F.SCAFFOLDS}


def heatmap(at: AppTest) -> tuple[dict, pd.DataFrame]:
    """The outcome heatmap as sent to the browser: its Vega-Lite spec, and its rows (the
    Arrow dataset the spec names) indexed by cell (row, task)."""
    specs = [(c, json.loads(c.proto.spec)) for c in charts(at)]
    ((chart, spec),) = [(c, s) for c, s in specs if s.get("mark", {}).get("type") == "rect"]
    (dataset,) = chart.proto.datasets
    assert spec["data"] == {"name": dataset.name}
    cells = pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()
    return spec, cells.set_index(["row", "task"])


def test_overview_headline_rates_and_charts(fixture_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(fixture_store, monkeypatch)
    assert texts(at.title) == ["Overview"]
    truth = read_frame(Store(fixture_store), "SELECT sum(input_tokens + output_tokens) AS t, "
                       "sum(cost_usd) AS c FROM episodes").iloc[0]
    shown = metrics(at)
    assert shown["Episodes"] == "36" and shown["Success rate"] == "56% ± 11%"  # 20/36, CR1 by task
    assert shown["Tokens"] == f"{int(truth.t):,}" and shown["Cost"] == f"${truth.c:,.4f}"
    assert metrics(at, sidebar=True) == {"episodes": "36", "runs": "1"}
    table = frame(at, "model", "success_rate").set_index("model")
    assert list(table.index) == ["alpha", "beta", "gamma"]
    assert list(table.success_rate.round(3)) == [1.0, 0.0, 0.667]
    assert table.loc["gamma", "success_se"] == pytest.approx(1 / 3)
    assert len(charts(at)) == 6  # error bars, outcome shares, heatmap, tokens, cost, time
    assert not at.error and "Outcomes: models x tasks" in texts(at.subheader)
    spec, cells = heatmap(at)  # coloured by success rate unless asked otherwise
    assert spec["encoding"]["color"]["field"] == "success_rate"
    assert spec["encoding"]["color"]["scale"]["domain"] == [0, 1]
    assert sorted(cells.index) == sorted(CELL_OUTCOMES) and (cells.episodes == 2).all()
    assert cells.success_rate.to_dict() == {c: float(o == "success") for c, o in CELL_OUTCOMES.items()}
    assert cells.top_outcome.to_dict() == CELL_OUTCOMES


def test_overview_heatmap_coloured_by_most_frequent_outcome(fixture_store: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(fixture_store, monkeypatch)
    at.segmented_control(key="overview_heatmap_colour").set_value("most frequent outcome").run()
    assert not at.exception and "colour: most frequent outcome of the cell" in " ".join(texts(at.caption))
    spec, cells = heatmap(at)
    colour = spec["encoding"]["color"]
    assert (colour["field"], colour["type"]) == ("top_outcome", "nominal")
    palette = dict(zip(colour["scale"]["domain"], colour["scale"]["range"], strict=True))
    drawn = {cell: palette[outcome] for cell, outcome in cells.top_outcome.items()}
    assert drawn == {cell: OUTCOME_COLORS[o] for cell, o in CELL_OUTCOMES.items()}
    assert drawn[("beta · react-text", "toy/t1")] == "#ef6c00"  # protocol_error: orange
    at.segmented_control(key="overview_heatmap_colour").set_value("success rate").run()
    assert heatmap(at)[0]["encoding"]["color"]["field"] == "success_rate"


def test_overview_filters_and_grouping(fixture_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(fixture_store, monkeypatch)
    at.multiselect(key="overview_models").set_value(["beta"]).run()
    assert metrics(at)["Episodes"] == "12" and metrics(at)["Success rate"] == "0% ± 0%"
    assert "No cost recorded" in " ".join(texts(at.caption))
    _, cells = heatmap(at)
    assert cells.top_outcome.to_dict() == {c: o for c, o in CELL_OUTCOMES.items() if c[0].startswith("beta")}
    at.multiselect(key="overview_models").set_value([]).run()
    at.segmented_control(key="overview_group").set_value("model · scaffold").run()
    table = frame(at, "model · scaffold", "success_rate")
    assert len(table) == 6 and table["model · scaffold"][0] == "alpha · react-text"
    at.multiselect(key="overview_runs").set_value([]).run()  # no run picked: every run
    assert metrics(at)["Episodes"] == "36"


# --- runs -----------------------------------------------------------------------------------
def test_runs_table_filters_and_opens_a_trace(fixture_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(fixture_store, monkeypatch, "app_pages/runs.py")
    table = at.dataframe(key="runs_table").value
    assert len(table) == 36 and table.started_at.is_monotonic_decreasing
    assert texts(at.caption)[0].startswith("36 episodes match · showing 36")
    at.multiselect(key="runs_outcomes").set_value(["error"]).run()
    failed = at.dataframe(key="runs_table").value
    assert len(failed) == 4 and set(failed.model) == {"gamma"} and set(failed.task_id) == {"t0"}
    at.multiselect(key="runs_outcomes").set_value([]).run()
    at.selectbox(key="runs_sort").set_value("tokens").run()
    at.toggle(key="runs_descending").set_value(False).run()
    assert list(at.dataframe(key="runs_table").value.tokens)[:4] == [0, 0, 0, 0]
    at.text_input(key="runs_search").set_value("empty reply").run()
    assert len(at.dataframe(key="runs_table").value) == 2
    chosen = at.dataframe(key="runs_table").value.episode_id[0]
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert texts(at.title) == ["Trace explorer"] and at.query_params["episode"] == chosen
    assert texts(at.subheader)[0].startswith("beta · react-tools · toy/t1")


# --- trace explorer -------------------------------------------------------------------------
def test_trace_of_a_failed_episode(fixture_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = episode_id(fixture_store, models="gamma", tasks="t0", scaffolds="react-tools")
    at = open_app(fixture_store, monkeypatch, "app_pages/trace.py", {"episode": failed})
    assert texts(at.subheader)[0].startswith("gamma · react-tools · toy/t0")
    assert metrics(at)["Steps"] == "1" and metrics(at)["LLM calls"] == "1"
    assert "BadRequestError: model gamma rejects this prompt" in texts(at.error)
    assert "attempt 1 failed: bad_request — model gamma rejects this prompt" in texts(at.warning)
    assert [t.label for t in at.tabs] == ["Conversation", "Timeline", "Tokens", "Attributes"]
    spans = frame(at, "span_type", "offset_ms")
    assert list(spans.span_type) == ["episode", "step", "llm_call"]
    assert list(spans.status_code) == ["ERROR"] * 3  # the failure ends all three


def test_trace_conversation_of_a_tool_episode(fixture_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = episode_id(fixture_store, models="alpha", scaffolds="react-tools")
    at = open_app(fixture_store, monkeypatch, "app_pages/trace.py", {"episode": ok})
    assert "**Final answer:** `5`" in texts(at.markdown)
    steps = [m for m in texts(at.markdown) if m.startswith("**Step ")]
    assert steps == ["**Step 0** · action **tool** `add` · 1 LLM call(s), 0 output tokens · 1 tool call(s)",
                     "**Step 1** · action **final**: 5 · 1 LLM call(s), 3 output tokens · 0 tool call(s)"]
    assert '{\n  "a": 2,\n  "b": 3\n}' in texts(at.code)  # the call's arguments
    assert "5" in texts(at.code)  # the tool's result
    assert "Final Answer: 5" in texts(at.text)
    roles = [c.name for c in at.chat_message]
    assert roles[:3] == ["system", "user", "assistant"] and "tool" in roles


def test_trace_tokens_coloured_by_logprob(fixture_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alpha = episode_id(fixture_store, models="alpha", scaffolds="react-text")
    at = open_app(fixture_store, monkeypatch, "app_pages/trace.py", {"episode": alpha})
    tokens = frame(at, "token", "logprob")
    assert tokens.logprob.notna().all() and "".join(tokens.token).startswith("Thought: I should add.")
    html = at.get("html")[0].proto.body
    assert html.count("<span ") == len(tokens) and "logprob -0.100 (p=90.5%)" in html
    assert "hsl(120, 70%, 82%)" in html  # logprob 0: certain, green
    assert any("coloured by probability" in c for c in texts(at.caption))
    beta = episode_id(fixture_store, models="beta", tasks="t0", scaffolds="react-text")
    at = open_app(fixture_store, monkeypatch, "app_pages/trace.py", {"episode": beta})
    assert any("no logprobs recorded" in c for c in texts(at.caption))
    assert "#e0e0e0" in at.get("html")[0].proto.body


def test_trace_raw_attributes_on_demand_and_unknown_episode(fixture_store: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(fixture_store, monkeypatch, "app_pages/trace.py", {"episode": "not-an-episode"})
    assert texts(at.warning)[0].startswith("No episode `not-an-episode` in this store")
    assert not at.json  # nothing read until asked
    at.toggle(key="trace_raw").set_value(True).run()
    attributes = json.loads(at.json[0].value)
    assert attributes["shardscope.span.type"] == "episode" and attributes["shardscope.seed"] in (0, 1)


# --- SQL console ----------------------------------------------------------------------------
def test_sql_console_examples_results_and_errors(fixture_store: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(fixture_store, monkeypatch, "app_pages/sql.py")
    assert "episodes (view)" in " ".join(e.label for e in at.expander).replace("**", "")
    assert texts(at.info) == ["Pick an example or write a query, then press Run."]
    at.selectbox(key="sql_example").set_value("How each model fails: outcomes per model").run()
    assert at.text_area(key="sql_text").value.startswith("SELECT model, outcome, count(*)")
    at.button(key="sql_run").click().run()
    result = frame(at, "model", "outcome", "episodes")
    assert len(result) == 6 and set(result.model) == set(F.MODELS)
    assert result.set_index(["model", "outcome"]).loc[("gamma", "error"), "episodes"] == 4
    assert at.get("download_button") and len(charts(at)) == 1
    at.text_area(key="sql_text").set_value("SELEC oops").run()
    at.button(key="sql_run").click().run()
    assert texts(at.error)[0].startswith("Query failed: Parser Error")
    at.text_area(key="sql_text").set_value("DELETE FROM spans").run()
    at.button(key="sql_run").click().run()
    assert "read-only" in texts(at.error)[0] and not at.exception
    assert read_frame(Store(fixture_store), "SELECT count(*) AS n FROM spans").n[0] == 218


# --- stores without data --------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_empty_store_shows_how_to_run_the_demo(empty_store: Path, page: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(empty_store, monkeypatch, page)
    if page.endswith("sql.py"):  # an empty store still has its views to browse
        assert "episodes (view)" in " ".join(e.label for e in at.expander).replace("**", "")
        return
    assert texts(at.info) == [f"The store `{empty_store}` holds no episode yet."]
    assert f"shardscope demo --db {empty_store}" in " ".join(texts(at.markdown))


@pytest.mark.parametrize("page", PAGES)
def test_missing_store_shows_how_to_run_the_demo(missing_store: Path, page: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(missing_store, monkeypatch, page)
    assert texts(at.info) == [f"No store at `{missing_store}` yet."]
    assert f"shardscope demo --db {missing_store}" in " ".join(texts(at.markdown))
    assert "no store at this path yet" in texts(at.sidebar.warning)
    assert not missing_store.exists() and not missing_store.parent.exists()


def test_unreadable_store_is_an_error_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "garbage.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    at = open_app(path, monkeypatch)
    assert len(at.error) == 1 and texts(at.error)[0].startswith(f"{path} is not a DuckDB database file")


def episodes_in_sidebar(at: AppTest) -> int:
    return int(metrics(at, sidebar=True).get("episodes", "0").replace(",", ""))


# --- a run writing while the app reads --------------------------------------------------------
@pytest.mark.slow
def test_live_run_appears_without_lock_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "live.duckdb"
    at = open_app(db, monkeypatch)
    assert texts(at.info) == [f"No store at `{db}` yet."]
    go = tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.toy_run", "--db", str(db), "--tasks", "8",
         "--seeds", "2", "--delay", "0.25", "--hold", str(go)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        first = writer.stdout.readline()  # printed once the first episode is in the store
        assert first.startswith("episode "), writer.stderr.read() if writer.stderr else ""
        # The run is held mid-way (no episode finishes until `go` exists): one rerun shows
        # what was committed, with no lock error.
        at.run()
        assert not at.exception and not at.error, ([e.value for e in at.exception], texts(at.error))
        held = episodes_in_sidebar(at)
        assert 1 <= held < 32 and writer.poll() is None, held
        go.touch()
        seen = [held]

        def finished() -> bool:
            assert writer.poll() in (None, 0), writer.stderr.read() if writer.stderr else ""
            at.run()
            assert not at.exception and not at.error, ([e.value for e in at.exception], texts(at.error))
            seen.append(episodes_in_sidebar(at))
            return seen[-1] >= 32 and writer.poll() is not None

        wait_until(finished, lambda: f"the run to finish (episodes seen: {seen})", interval=0.2)
        assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
        assert seen == sorted(seen), seen
    finally:
        if writer.poll() is None:
            writer.kill()
    assert metrics(at)["Episodes"] == "32"


def test_a_killed_run_shows_as_stale_with_how_to_resume_it(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from shardscope.config.settings import Settings
    from shardscope.tracer import attributes as A
    from shardscope.tracer.attributes import SpanType
    from shardscope.tracer.schema import STALE_AFTER_S
    from shardscope.tracer.setup import setup_tracing
    from tests.test_runner_interrupts import backdate_writers

    db = F.build_store(tmp_path / "stale.duckdb")  # one finished run ...
    tracing = setup_tracing(Settings(db=db), strict=True)  # ... and one whose process died
    with tracing.inherit({A.RUN_ID: "r-dead"}), tracing.span("run start r-dead", SpanType.RUN_START,
                      {A.RUN_CONFIG: F.SPEC.to_json(), A.RUN_PLANNED_EPISODES: 36}):
        pass
    tracing.shutdown()
    backdate_writers(Store(db), STALE_AFTER_S + 5)
    at = open_app(db, monkeypatch)
    warning = " ".join(texts(at.warning))
    assert "stopped without ending" in warning and "shardscope run --resume r-dead" in warning
    bars = [p.proto.text for p in at.get("progress")]  # the sidebar's latest run and Running
    assert bars.count("**r-dead** — stale — 0 / 36 episodes") == 2
