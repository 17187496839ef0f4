"""What a run emits, shaped for the tools people already use: one trace per episode (linked to
its run span, grouped by session.id), the model and version on the agent span, tool
definitions as a flat JSON string, the conventions' finish reasons (never null) — and every
view, query and the trace explorer still read it from a real store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import pandas as pd

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer import attributes as A
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.queries.trace import load_trace
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes

SPEC = MatrixSpec(suites=("toy",), models=("toy-a", "toy-b"), scaffolds=("react-tools",), seeds=2)
# The conventions' FinishReason enum and tool-definition item, as their JSON schemas define them.
FINISH_REASONS = {"stop", "length", "content_filter", "tool_call", "error"}
TOOL_DEFINITION = {
    "type": "object", "required": ["type", "name"],
    "properties": {"type": {"const": "function"}, "name": {"type": "string"},
                   "description": {"type": ["string", "null"]},
                   "parameters": {"type": ["object", "null"]}},
}


def _policy(messages, tools, config):
    if len(messages) <= 2:  # finish reason left to the backend's own value (`tool_calls`)
        return Scripted(tool_calls=(ToolCall("c", "add", {"a": 2, "b": 3}),))
    return Scripted(text="Final Answer: 5", finish_reason="end_turn")  # Anthropic's value


def _run(db: Path) -> str:
    tracing = setup_tracing(Settings(db=db, flush_interval=0.1), strict=True)
    models = {n: TracedModel(ScriptedBackend(model=f"{n}-v1", policy=_policy), tracing, model_id=n)
              for n in ("toy-a", "toy-b")}
    resources = fakes.resources(models, tasks=2)
    resources.request_model_of = lambda model_id: f"{model_id}-v1"
    report = asyncio.run(Runner(tracing, resources, progress=False).run(SPEC))
    tracing.shutdown()
    return report.run_id


def test_each_episode_is_a_trace_root_linked_to_its_run(db_path: Path) -> None:
    run_id = _run(db_path)
    store = Store(db_path)
    spans = read_frame(store, "SELECT trace_id, span_id, parent_span_id, span_type, episode_id, "
                              "links, attributes FROM spans")
    (run,) = spans[spans.span_type == "run"].itertuples()
    episodes = spans[spans.span_type == "episode"]
    assert len(episodes) == 8 and episodes.trace_id.nunique() == 8
    assert run.trace_id not in set(episodes.trace_id)
    for episode in episodes.itertuples():
        assert pd.isna(episode.parent_span_id)
        assert json.loads(episode.links) == [
            {"trace_id": run.trace_id, "span_id": run.span_id, "attributes": {}}]
        inside = spans[spans.episode_id == episode.episode_id]
        assert set(inside.trace_id) == {episode.trace_id}  # steps, calls, tools: its trace
        assert {"step", "llm_call", "tool_call"} <= set(inside.span_type)
        for attributes in inside.attributes:
            attrs = json.loads(attributes)
            assert attrs[A.SESSION_ID] == run_id  # groups the run's traces in the peers
            assert attrs[A.GEN_AI_CONVERSATION_ID] == episode.episode_id
    # the episodes view, keyed on ids, does not care where a trace starts
    rows = read_frame(store, "SELECT episode_id, trace_id, run_id, outcome, llm_calls, tool_calls "
                             "FROM episodes")
    assert len(rows) == 8 and set(rows.run_id) == {run_id}
    assert set(rows.outcome) == {"success"} and set(rows.llm_calls) == {2}
    assert set(rows.tool_calls) == {1}
    assert set(rows.trace_id) == set(episodes.trace_id)


def test_the_trace_explorer_shows_an_episode_trace(db_path: Path) -> None:
    _run(db_path)
    store = Store(db_path)
    episode_id = read_frame(store, "SELECT episode_id FROM episodes LIMIT 1").episode_id[0]
    trace = load_trace(store, episode_id)
    assert trace is not None
    assert next(iter(trace.spans.depth)) == 0 and trace.spans.span_type.iloc[0] == "episode"
    assert sorted(trace.spans.span_type) == sorted(
        ["episode", "step", "step", "llm_call", "llm_call", "tool_call"])
    assert len(trace.steps) == 2 and len(trace.llm_calls) == 2 and len(trace.tool_calls) == 1


def test_agent_span_carries_model_and_version(db_path: Path) -> None:
    _run(db_path)
    store = Store(db_path)
    rows = read_frame(store, "SELECT model_id, attributes FROM spans WHERE span_type = 'episode'")
    hashes = read_frame(store, "SELECT DISTINCT scaffold_hash FROM episodes").scaffold_hash
    for model_id, attributes in zip(rows.model_id, rows.attributes, strict=True):
        attrs = json.loads(attributes)
        assert attrs[A.GEN_AI_REQUEST_MODEL] == f"{model_id}-v1"
        assert attrs[A.GEN_AI_AGENT_VERSION] == hashes[0]
        assert attrs[A.GEN_AI_OPERATION_NAME] == "invoke_agent"


def test_tool_definitions_and_finish_reasons_follow_the_conventions(db_path: Path) -> None:
    _run(db_path)
    rows = read_frame(Store(db_path), "SELECT attributes FROM spans WHERE span_type = 'llm_call'")
    seen: set[str] = set()
    for attributes in rows.attributes:
        attrs = json.loads(attributes)
        definitions = attrs[A.GEN_AI_TOOL_DEFINITIONS]
        assert isinstance(definitions, str)  # a JSON string, not a structured value
        items = json.loads(definitions)
        assert [d["name"] for d in items] == ["add"] and "function" not in items[0]
        for item in items:
            jsonschema.validate(item, TOOL_DEFINITION)
        reasons = attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]
        outputs = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
        assert [m["finish_reason"] for m in outputs] == reasons
        assert set(reasons) <= FINISH_REASONS
        seen |= set(reasons)
    assert seen == {"tool_call", "stop"}  # `tool_calls` and `end_turn` normalized


def test_finish_reason_mapping() -> None:
    assert A.finish_reason("tool_calls", True) == "tool_call"
    assert A.finish_reason("tool_use", True) == "tool_call"
    assert A.finish_reason("max_tokens", False) == "length"
    assert A.finish_reason("STOP", False) == "stop"  # Gemini writes upper case
    assert A.finish_reason(None, True) == "tool_call"
    assert A.finish_reason(None, False) == "stop"
    assert A.finish_reason("recitation", False) == "recitation"  # unknown: kept, never null


def test_the_collector_stores_our_episode_traces_as_the_pipeline_does(
        tmp_path: Path, monkeypatch) -> None:
    """A run exported over OTLP into `shardscope collect` gives the same episodes, each still
    its own trace with its link, as the run's own store."""
    from tests.helpers.collect import running_collector

    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")  # the collector takes traces and logs
    direct, collected = tmp_path / "direct.duckdb", tmp_path / "collected.duckdb"
    with running_collector(collected) as collector:
        settings = Settings(db=direct, exporters=("duckdb", "otlp"), otlp_endpoint=collector.url,
                            flush_interval=0.1)
        tracing = setup_tracing(settings, strict=True)
        models = {n: TracedModel(ScriptedBackend(model=n, policy=_policy), tracing, model_id=n)
                  for n in ("toy-a", "toy-b")}
        asyncio.run(Runner(tracing, fakes.resources(models, tasks=2), progress=False).run(SPEC))
        tracing.shutdown()
    sql = ("SELECT episode_id, trace_id, span_id, run_id, model, outcome, steps, llm_calls, "
           "tool_calls, scaffold_hash FROM episodes ORDER BY episode_id")
    mine, theirs = read_frame(Store(direct), sql), read_frame(Store(collected), sql)
    assert len(mine) == 8 and mine.equals(theirs)
    links = read_frame(Store(collected), "SELECT links FROM spans WHERE span_type = 'episode'")
    (run_span,) = read_frame(Store(collected), "SELECT span_id FROM spans WHERE span_type = 'run'").span_id
    assert {json.loads(text)[0]["span_id"] for text in links.links} == {run_span}
    trace = load_trace(Store(collected), mine.episode_id[0])
    assert trace is not None and len(trace.spans) == 6
