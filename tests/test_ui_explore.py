"""The app's reads (shardscope.tracer.queries) and the Overview's tables over them
(shardscope.analysis.summaries) on stores written by the real runner: every number the app shows."""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path

import pytest

from shardscope.analysis.summaries import model_summary, outcome_matrix, run_outcomes
from shardscope.config.errors import QueryError
from shardscope.config.settings import Settings
from shardscope.scaffolds.runner.runner import Runner
from shardscope.tracer.queries.episodes import episode_table
from shardscope.tracer.queries.filters import OUTCOMES, EpisodeFilter
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.queries.overview import CubeCache, episode_cube
from shardscope.tracer.queries.runs import store_summary
from shardscope.tracer.queries.status import store_version
from shardscope.tracer.queries.trace import load_trace, load_trace_page, span_detail, token_stream
from shardscope.tracer.queries.user_sql import EXAMPLE_QUERIES, sql_result
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from shardscope.tracer.transcript import conversation
from tests import ui_fixtures as F


def test_summary_counts_and_run_progress(fixture_store: Path) -> None:
    summary = store_summary(Store(fixture_store))
    assert (summary.state, summary.episodes, summary.spans) == ("ready", F.EPISODES, 218)
    run = summary.latest_run
    assert run is not None and run.name == F.RUN_NAME
    assert (run.status, run.planned, run.completed, run.fraction) == ("finished", 36, 36, 1.0)
    assert summary.running == ()


def test_missing_and_empty_stores_are_states(missing_store: Path, empty_store: Path) -> None:
    missing = store_summary(Store(missing_store))
    assert missing.state == "missing" and not missing_store.exists()  # reading created nothing
    empty = store_summary(Store(empty_store))
    assert (empty.state, empty.episodes, empty.runs) == ("empty", 0, ())


def test_version_token_changes_when_a_writer_commits(tmp_path: Path) -> None:
    path = tmp_path / "v.duckdb"
    assert store_version(path) == "-/-"
    F.build_empty_store(path)
    before = store_version(path)
    with Store(path).writer() as con:
        con.execute("INSERT INTO shardscope_meta VALUES ('note', 'x')")
    assert store_version(path) != before


def test_cube_sums_match_the_episodes_view(fixture_store: Path) -> None:
    store = Store(fixture_store)
    cube = episode_cube(store)
    truth = read_frame(store, "SELECT model, count(*) n, sum(input_tokens + output_tokens) tokens, "
                       "sum(cost_usd) AS cost, sum(duration_s) AS secs FROM episodes GROUP BY model")
    by_model = cube.groupby("model")[["episodes", "tokens", "seconds"]].sum()
    for row in truth.itertuples():
        assert by_model.loc[row.model, "episodes"] == row.n
        assert by_model.loc[row.model, "tokens"] == row.tokens
        assert by_model.loc[row.model, "seconds"] == pytest.approx(row.secs)
    alpha_cost = cube[cube.model == "alpha"]["cost_usd"].sum()
    assert alpha_cost == pytest.approx(truth.set_index("model").loc["alpha", "cost"])
    assert cube[cube.model != "alpha"]["cost_usd"].isna().all()  # unpriced: no cost, not 0


def test_model_summary_rates_errors_and_outcomes(fixture_store: Path) -> None:
    cube = episode_cube(Store(fixture_store))
    table = model_summary(cube).set_index("model")
    assert list(table.index) == list(F.MODELS)
    for model, outcomes in F.OUTCOMES.items():
        assert table.loc[model, "episodes"] == 12 and table.loc[model, "tasks"] == 3
        for outcome in OUTCOMES:
            assert table.loc[model, outcome] == outcomes.get(outcome, 0)
    assert table.loc["alpha", "success_rate"] == 1.0 and table.loc["beta", "success_rate"] == 0.0
    # gamma: task t0 0/4, t1 4/4, t2 4/4 -> p = 2/3; CR1 by task: sqrt(3/2 * 10.67) / 12 = 1/3;
    # the interval is stats.rate_interval's: Wilson on n / deff episodes (deff = (1/3)^2 /
    # (2/9 / 12) = 6, capped at 12 / 3 tasks = 4, so n_eff = 3) with t on 2 df (4.3027)
    assert table.loc["gamma", "success_rate"] == pytest.approx(2 / 3)
    assert table.loc["gamma", "success_se"] == pytest.approx(1 / 3)
    assert table.loc["gamma", "ci_low"] == pytest.approx(0.0630207, abs=1e-6)
    assert table.loc["gamma", "ci_high"] == pytest.approx(0.9834632, abs=1e-6)
    assert table.loc["alpha", "priced_episodes"] == 12 and math.isnan(table.loc["beta", "cost_usd"])
    by_scaffold = model_summary(cube, by=("model", "scaffold"))
    assert len(by_scaffold) == 6 and set(by_scaffold.episodes) == {6}


def test_filters_narrow_the_cube(fixture_store: Path) -> None:
    cube = episode_cube(Store(fixture_store))
    flt = EpisodeFilter(models=("beta",), scaffolds=("react-text",))
    table = model_summary(cube, flt)
    assert list(table.model) == ["beta"] and table.episodes[0] == 6
    assert (table.failure[0], table.protocol_error[0], table.budget_exhausted[0]) == (2, 2, 2)


def test_outcome_matrix_cells(fixture_store: Path) -> None:
    matrix = outcome_matrix(episode_cube(Store(fixture_store)))
    assert len(matrix) == len(F.MODELS) * len(F.SCAFFOLDS) * len(F.TASKS)
    cell = matrix.set_index(["model", "scaffold", "task_id"])
    assert cell.loc[("beta", "react-tools", "t1"), "top_outcome"] == "protocol_error"
    assert cell.loc[("gamma", "react-text", "t0"), "error"] == 2
    assert cell.loc[("alpha", "react-tools", "t2"), "success_rate"] == 1.0
    assert set(matrix.episodes) == {2}


def test_run_outcomes(fixture_store: Path) -> None:
    table = run_outcomes(episode_cube(Store(fixture_store))).iloc[0]
    assert (table.episodes, table.success, table.error, table.failure) == (36, 20, 4, 4)


def test_cube_cache_recomputes_only_changed_runs(tmp_path: Path) -> None:
    path = F.build_store(tmp_path / "two-runs.duckdb")
    store, cache = Store(path), CubeCache()
    summary = store_summary(store)
    first = cache.cube(store, summary, store_version(path))
    assert set(cache.computed) == {summary.runs[0].run_id, None} and first.episodes.sum() == 36
    cache.cube(store, summary, store_version(path))
    assert cache.computed == []  # nothing changed: nothing read
    tracing = setup_tracing(Settings(db=path, flush_interval=0.1), strict=True)
    asyncio.run(Runner(tracing, F._resources(F._models(tracing)), progress=False).run(F.SPEC))
    tracing.shutdown()
    summary = store_summary(store)
    second = cache.cube(store, summary, store_version(path))
    assert set(cache.computed) == {summary.runs[0].run_id, None}  # the new run only
    assert second.episodes.sum() == 72 and second.run_id.nunique() == 2


def test_episode_table_filters_sorts_and_pages(fixture_store: Path) -> None:
    store = Store(fixture_store)
    page = episode_table(store, EpisodeFilter(outcomes=("error",)), with_facets=True)
    assert page.total == 4 and set(page.rows.model) == {"gamma"} and set(page.rows.task_id) == {"t0"}
    assert page.rows.error.str.contains("model gamma rejects this prompt").all()
    assert page.facets is not None and page.facets.models == F.MODELS
    assert page.facets.outcomes == OUTCOMES  # in the canonical order
    by_tokens = episode_table(store, sort="tokens", descending=False, limit=5)
    assert by_tokens.total == 36 and len(by_tokens.rows) == 5
    assert list(by_tokens.rows.tokens) == sorted(by_tokens.rows.tokens)
    assert by_tokens.rows.tokens.iloc[0] == 0  # gamma t0: the call failed, no tokens
    searched = episode_table(store, EpisodeFilter(search="empty reply"))
    assert searched.total == 2 and set(searched.rows.scaffold) == {"react-tools"}
    alpha = episode_table(store, EpisodeFilter(models=("alpha",))).rows
    truth = read_frame(store, "SELECT episode_id, cost_usd FROM episodes WHERE model = 'alpha'")
    merged = alpha.merge(truth, on="episode_id", suffixes=("", "_view"))
    assert len(merged) == 12 and (merged.cost_usd - merged.cost_usd_view).abs().max() < 1e-12
    with pytest.raises(ValueError, match="cannot sort episodes by 'nope'"):
        episode_table(store, sort="nope")


def _episode(store: Store, **where: str) -> str:
    flt = EpisodeFilter(**{k: (v,) for k, v in where.items()})
    return episode_table(store, flt, limit=1).rows.episode_id[0]


def test_trace_tree_and_conversation_of_a_tool_episode(fixture_store: Path) -> None:
    store = Store(fixture_store)
    ok = _episode(store, models="alpha", scaffolds="react-tools")
    trace = load_trace(store, ok)
    assert trace is not None and trace.episode["outcome"] == "success"
    spans = trace.spans
    assert list(spans.span_type) == ["episode", "step", "llm_call", "tool_call", "step", "llm_call"]
    assert list(spans.depth) == [0, 1, 2, 2, 1, 2]
    assert spans.offset_ms.iloc[0] == 0 and (spans.offset_ms >= 0).all()
    steps = conversation(trace)
    assert [s.index for s in steps] == [0, 1]
    first, last = steps
    assert [m.role for m in first.fed_in] == ["system", "user"]
    assert re.fullmatch(r"Task t\d: a is 2\. b is 3\. What is a \+ b\?", first.fed_in[1].text)
    assert first.output[0].tool_calls[0]["name"] == "add"
    assert first.output[0].tool_calls[0]["arguments"] == {"a": 2, "b": 3}
    assert first.tool_calls[0]["result"] == "5" and first.tool_calls[0]["ok"]
    assert first.action["type"] == "tool"
    assert last.fed_in[0].role == "tool" and last.fed_in[0].tool_results[0]["response"] == "5"
    assert last.output[0].text == "Final Answer: 5" and last.action == {"type": "final", "answer": "5"}


def test_trace_of_failed_episodes(fixture_store: Path) -> None:
    store = Store(fixture_store)
    rejected = load_trace(store, _episode(store, models="gamma", tasks="t0"))
    assert rejected is not None and rejected.episode["outcome"] == "error"
    assert rejected.llm_calls.status_code[0] == "ERROR" and rejected.llm_calls.error_type[0] == "bad_request"
    assert rejected.attempts.error_type.tolist() == ["bad_request"]
    retried = load_trace(store, _episode(store, models="gamma", tasks="t1"))
    assert retried is not None and retried.episode["outcome"] == "success"
    assert retried.attempts.error_type.tolist() == ["server_error"]
    assert conversation(retried)[0].attempts[0]["status_code"] == 503
    text_protocol = _episode(store, models="beta", tasks="t1", scaffolds="react-text")
    broken = load_trace(store, text_protocol)
    assert broken is not None
    errors = [s.protocol_error for s in conversation(broken)]
    assert errors == ["no 'Action:' or 'Final Answer:' line"] * 2
    assert load_trace(store, "no-such-episode") is None


def test_token_stream_with_and_without_logprobs(fixture_store: Path) -> None:
    store = Store(fixture_store)
    alpha = load_trace(store, _episode(store, models="alpha", scaffolds="react-text"))
    assert alpha is not None
    tokens = token_stream(store, alpha.llm_calls.span_id[0])
    assert "".join(tokens.token).strip().startswith("Thought: I should add.")
    assert tokens.logprob.notna().all() and list(tokens.token_index) == list(range(len(tokens)))
    assert tokens.probability.iloc[1] == pytest.approx(math.exp(-0.1))
    beta = load_trace(store, _episode(store, models="beta", tasks="t0"))
    assert beta is not None
    plain = token_stream(store, beta.llm_calls.span_id[0])
    assert len(plain) > 0 and plain.logprob.isna().all()


def test_span_detail_and_trace_page(fixture_store: Path) -> None:
    store = Store(fixture_store)
    page = load_trace_page(store)
    assert len(page.picker) == 36 and page.trace is not None
    assert page.trace.episode["episode_id"] == page.picker.episode_id[0]  # the latest
    call = page.trace.llm_calls.span_id[0]
    detail = span_detail(store, call)
    assert detail is not None and detail.attributes["shardscope.span.type"] == "llm_call"
    assert detail.resource["service.name"] == "shardscope"
    assert span_detail(store, "0000000000000000") is None


def test_example_queries_answer_on_the_fixture(fixture_store: Path) -> None:
    store = Store(fixture_store)
    results = {q.title: sql_result(store, q.sql)[0] for q in EXAMPLE_QUERIES}
    assert all(len(frame) for frame in results.values()), [t for t, f in results.items() if f.empty]
    rates = results[EXAMPLE_QUERIES[0].title].set_index(["model", "scaffold"])
    assert rates.loc[("alpha", "react-tools"), "success_rate"] == 1.0
    disagree = results["Tasks where models disagree"]
    assert set(disagree.task_id) == {"t0", "t1", "t2"}


def test_sql_results_are_capped_and_read_only(fixture_store: Path) -> None:
    store = Store(fixture_store)
    frame, truncated = sql_result(store, "SELECT * FROM spans", max_rows=10)
    assert len(frame) == 10 and truncated
    with pytest.raises(QueryError, match="read-only"):
        sql_result(store, "DELETE FROM spans")
    with pytest.raises(QueryError, match="Catalog Error"):
        sql_result(store, "SELECT * FROM nope")
    assert read_frame(store, "SELECT count(*) n FROM spans").n[0] == 218
