"""Spans that shardscope did not write become episodes, LLM calls, tool calls and messages:
a plain OpenTelemetry SDK program emitting GenAI-convention spans (invoke_agent → chat ×2 →
execute_tool), sent through the real collector, in any order and in separate requests."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.helpers.collect import rows, running_collector

WEATHER_ARGS = {"city": "Paris"}


def _agent_program(provider: TracerProvider, model: str = "qwen-0.5b",
                   agent_attrs: dict[str, object] | None = None) -> None:
    """What a hand-instrumented agent emits by the GenAI conventions (v1.41 names)."""
    tracer = provider.get_tracer("my-agent", "1.0")
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather-bot",
             "gen_ai.agent.version": "v7", **(agent_attrs or {})}
    with tracer.start_as_current_span("invoke_agent weather-bot", attributes=attrs):
        with tracer.start_as_current_span("chat " + model, kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 40,
                "gen_ai.usage.output_tokens": 12,
                "gen_ai.response.finish_reasons": ["tool_call"],
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                    {"type": "text", "content": "Weather in Paris?"}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                    {"type": "tool_call", "id": "call_1", "name": "get_weather",
                     "arguments": WEATHER_ARGS}], "finish_reason": "tool_call"}]),
        }):
            pass
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1",
                "gen_ai.tool.call.arguments": json.dumps(WEATHER_ARGS),
                "gen_ai.tool.call.result": "sunny, 21C"}):
            pass
        with tracer.start_as_current_span("chat " + model, kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 60,
                "gen_ai.usage.output_tokens": 8,
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.response.time_to_first_chunk": 0.25,
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                    {"type": "text", "content": "Sunny, 21C."}], "finish_reason": "stop"}]),
        }):
            pass


def _recorded(model: str = "qwen-0.5b", **kwargs: object) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "weather-app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _agent_program(provider, model, **kwargs)  # type: ignore[arg-type]
    provider.shutdown()
    return list(memory.get_finished_spans())


def _send_one_by_one(url: str, spans: Sequence[ReadableSpan]) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces")
    for span in spans:  # one request per span, in the order given
        assert exporter.export([span]).name == "SUCCESS"
    exporter.shutdown()


def _check_views(db: Path, model: str = "qwen-0.5b") -> None:
    (episode,) = rows(db, "SELECT episode_id, scaffold, scaffold_hash, model, provider, "
                          "llm_calls, input_tokens, output_tokens, tool_calls, trace_id || '-' || "
                          "span_id FROM episodes")
    assert episode[1:9] == ("weather-bot", "v7", model, "openai", 2, 100, 20, 1)
    assert episode[0] == episode[9]
    calls = rows(db, "SELECT episode_id, model, provider, input_tokens, output_tokens, "
                     "finish_reasons, time_to_first_token_s FROM llm_calls ORDER BY started_at")
    assert [c[0] for c in calls] == [episode[0]] * 2
    assert [c[1:5] for c in calls] == [(model, "openai", 40, 12), (model, "openai", 60, 8)]
    assert [json.loads(c[5]) for c in calls] == [["tool_call"], ["stop"]]
    assert calls[1][6] == 0.25
    (tool,) = rows(db, "SELECT episode_id, tool_name, call_id, arguments, result, ok "
                       "FROM tool_calls")
    assert tool[0] == episode[0]
    assert tool[1:] == ("get_weather", "call_1", json.dumps(WEATHER_ARGS), "sunny, 21C", True)
    messages = rows(db, "SELECT episode_id, direction, role, text, parts FROM messages "
                        "ORDER BY started_at, direction, position")
    assert [(m[1], m[2], m[3]) for m in messages] == [
        ("input", "user", "Weather in Paris?"), ("output", "assistant", ""),
        ("output", "assistant", "Sunny, 21C.")]
    assert json.loads(messages[1][4])[0]["arguments"] == WEATHER_ARGS
    assert {m[0] for m in messages} == {episode[0]}


def test_sdk_program_lands_in_every_view(db_path: Path) -> None:
    with running_collector(db_path) as c:
        provider = TracerProvider()
        # one request per span as it ends: the children arrive before their agent span
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{c.url}/v1/traces")))
        _agent_program(provider)
        provider.shutdown()
    _check_views(db_path)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_any_order_of_arrival_gives_the_same_rows(db_path: Path, seed: int) -> None:
    spans = _recorded()
    random.Random(seed).shuffle(spans)
    with running_collector(db_path) as c:
        _send_one_by_one(c.url, spans)
        _send_one_by_one(c.url, spans[:2])  # a retrying exporter re-sends: nothing changes
    _check_views(db_path)
    assert rows(db_path, "SELECT count(*) FROM spans") == [(4,)]


def test_the_episode_model_comes_from_its_calls_unless_the_agent_names_one(db_path: Path) -> None:
    with running_collector(db_path) as c:
        _send_one_by_one(c.url, _recorded("model-a"))
        _send_one_by_one(c.url, _recorded("model-b", agent_attrs={
            "gen_ai.request.model": "model-b-router"}))
    assert rows(db_path, "SELECT model, llm_calls FROM episodes ORDER BY model") == [
        ("model-a", 2), ("model-b-router", 2)]


def test_a_trace_root_without_agent_span_is_the_episode(db_path: Path) -> None:
    provider_memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(provider_memory))
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("answer question"):
        with tracer.start_as_current_span("http POST"):  # a plain span between them
            with tracer.start_as_current_span("chat m", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
                    "gen_ai.request.model": "m", "gen_ai.usage.prompt_tokens": 5,
                    "gen_ai.usage.completion_tokens": 3}):
                pass
    with tracer.start_as_current_span("lonely http span"):  # no model call: no episode
        pass
    provider.shutdown()
    with running_collector(db_path) as c:
        _send_one_by_one(c.url, list(reversed(provider_memory.get_finished_spans())))
    assert rows(db_path, "SELECT scaffold, model, provider, llm_calls, input_tokens, "
                         "output_tokens FROM episodes") == [("answer question", "m", "openai",
                                                              1, 5, 3)]
    assert rows(db_path, "SELECT provider, input_tokens, episode_id IS NOT NULL FROM llm_calls"
                ) == [("openai", 5, True)]


def test_shardscope_spans_are_left_as_they_are(db_path: Path) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("shardscope").start_as_current_span("chat m", attributes={
            "shardscope.span.type": "llm_call", "gen_ai.operation.name": "chat",
            "gen_ai.system": "x", "shardscope.episode.id": "e1"}):
        pass
    provider.shutdown()
    with running_collector(db_path) as c:
        _send_one_by_one(c.url, memory.get_finished_spans())
    ((attributes, episode_id, provider_name),) = rows(
        db_path, "SELECT attributes, episode_id, provider FROM spans")
    assert "shardscope.mapped" not in attributes
    assert (episode_id, provider_name) == ("e1", None)


def _task_program(provider: TracerProvider, model: str, task: str, solved: bool,
                  tools: int) -> None:
    """A user's own agent on one task: its outcome and task id set on the agent span."""
    tracer = provider.get_tracer("my-agent")
    with tracer.start_as_current_span("invoke_agent solver", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "solver",
            "shardscope.task.id": task, "shardscope.suite.name": "mine",
            "shardscope.episode.outcome": "success" if solved else "failure"}):
        for i in range(tools):
            with tracer.start_as_current_span("chat " + model, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}):
                pass
            with tracer.start_as_current_span("execute_tool lookup", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
                    "gen_ai.tool.call.arguments": json.dumps({"q": f"{task}-{i}"})}):
                pass


def test_compare_works_on_ingested_agents(db_path: Path) -> None:
    import subprocess
    import sys

    from shardscope.analysis.compare import compare
    from shardscope.tracer.queries.comparison import Selection
    from shardscope.tracer.store import Store

    with running_collector(db_path) as c:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{c.url}/v1/traces")))
        for task in ("t1", "t2", "t3", "t4"):
            _task_program(provider, "model-a", task, solved=True, tools=1)
            _task_program(provider, "model-b", task, solved=task == "t1", tools=2)
        provider.shutdown()
    result = compare(Store(db_path), Selection(), clusters=False)
    assert result.systems == ("model-a · solver", "model-b · solver")
    rates = dict(zip(result.estimates.system, result.estimates.success_rate, strict=True))
    assert rates == {"model-a · solver": 1.0, "model-b · solver": 0.25}
    (row,) = result.comparisons.itertuples()
    assert (row.a, row.b, row.tasks, row.diff) == ("model-a · solver", "model-b · solver", 4, 0.75)
    # no scaffold steps: their trajectories are their tool calls; b's second lookup parts them
    (divergence,) = result.divergences
    assert divergence.summary["pairs"] == 4
    assert divergence.summary["identical"] == 0
    assert divergence.summary["median_first_divergence"] == 1
    profile = result.tool_profile[["system", "tool_name", "calls"]]
    assert [tuple(r) for r in profile.itertuples(index=False)] == [
        ("model-a · solver", "lookup", 4), ("model-b · solver", "lookup", 8)]
    assert rows(db_path, "SELECT model, scaffold, suite, sum(input_tokens), sum(tool_calls) "
                         "FROM episodes GROUP BY ALL ORDER BY model") == [
        ("model-a", "solver", "mine", 40, 4), ("model-b", "solver", "mine", 80, 8)]
    out = subprocess.run([sys.executable, "-m", "shardscope", "compare", "--db", str(db_path),
                          "--no-clusters"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "model-a · solver" in text and "model-b · solver" in text
