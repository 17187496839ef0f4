"""Real third-party instrumentations wrap the real ``openai`` SDK talking to the llama.cpp
server on loopback, export to the real collector over OTLP/HTTP and OTLP/gRPC, and their
calls land in episodes, llm_calls, messages and tool_calls with the right model, provider,
tokens, content, finish reasons and tool arguments.

The agent around the calls is a hand-written GenAI-convention loop (invoke_agent span, a
forced tool call, an execute_tool span, a second call with the tool's result), as a user's own
agent instrumented by the conventions would be."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.helpers.collect import Running, rows, running_collector
from tests.servers.fixtures import LlamaServer

pytest.importorskip("opentelemetry.instrumentation.openai_v2")
pytest.importorskip("openinference.instrumentation.openai")

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
FORCED = {"type": "function", "function": {"name": "get_weather"}}


def _exporters(c: Running, transport: str) -> tuple[Any, Any]:
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return (OTLPSpanExporter(endpoint=c.grpc_target, insecure=True),
                OTLPLogExporter(endpoint=c.grpc_target, insecure=True))
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )
    return (HttpSpanExporter(endpoint=f"{c.url}/v1/traces"),
            HttpLogExporter(endpoint=f"{c.url}/v1/logs"))


@contextmanager
def _instrumented(kind: str, c: Running, transport: str) -> Iterator[TracerProvider]:
    span_exporter, log_exporter = _exporters(c, transport)
    resource = Resource.create({"service.name": f"{kind}-app"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    if kind == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        instrumentor: Any = OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    else:
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor
        instrumentor = OIInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield tracer_provider
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()
        logger_provider.shutdown()


def _agent(provider: TracerProvider, server: LlamaServer) -> dict[str, Any]:
    """A user's agent: a forced tool call, the tool, then an answer from its result."""
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    tracer = provider.get_tracer("weather-agent")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    with tracer.start_as_current_span("invoke_agent weather-bot", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather-bot",
            "shardscope.task.id": "paris-weather"}) as agent:
        first = client.chat.completions.create(model=server.model, messages=messages,  # type: ignore[arg-type]
                                               tools=TOOLS, tool_choice=FORCED, max_tokens=48, seed=1, temperature=0)  # type: ignore[arg-type]
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": call.id,
                "gen_ai.tool.call.arguments": call.function.arguments,  # type: ignore[union-attr]
                "gen_ai.tool.call.result": "sunny, 21C"}):
            pass
        # the llama.cpp chat template reads an assistant message's content: give one
        messages += [{"content": "", **first.choices[0].message.model_dump(exclude_none=True)},
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
        second = client.chat.completions.create(model=server.model, messages=messages,  # type: ignore[arg-type]
                                                max_tokens=12, seed=1, temperature=0)
        agent.set_attribute("shardscope.episode.outcome", "success")
    return {"first": first, "second": second, "arguments": json.loads(
        call.function.arguments)}  # type: ignore[union-attr]


@pytest.mark.parametrize(("kind", "content", "transport"), [
    # openai-v2 2.4b0 with opentelemetry-util-genai 1.1b0 always takes the latest GenAI
    # conventions: content as OTLP log events (EVENT_ONLY; the collector joins them to their
    # spans) or as span attributes (SPAN_ONLY)
    ("openai-v2", "EVENT_ONLY", "http"), ("openai-v2", "EVENT_ONLY", "grpc"),
    ("openai-v2", "SPAN_ONLY", "http"),
    ("openinference", "", "http"), ("openinference", "", "grpc"),
])
def test_third_party_instrumentations_land_in_the_views(
        db_path: Path, llama_tool_server: LlamaServer, kind: str, content: str, transport: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", content)
    with running_collector(db_path, grpc=True) as c:
        with _instrumented(kind, c, transport) as provider:
            done = _agent(provider, llama_tool_server)
    first, second = done["first"], done["second"]
    (episode,) = rows(db_path, "SELECT episode_id, scaffold, model, provider, llm_calls, "
                               "input_tokens, output_tokens, tool_calls, outcome, task_id "
                               "FROM episodes")
    usage = first.usage.prompt_tokens + second.usage.prompt_tokens
    assert episode[1:] == ("weather-bot", "smollm2", "openai", 2, usage,
                           first.usage.completion_tokens + second.usage.completion_tokens,
                           1, "success", "paris-weather")
    calls = rows(db_path, "SELECT episode_id, model, provider, input_tokens, output_tokens, "
                          "finish_reasons, response_id FROM llm_calls ORDER BY started_at")
    assert [c[0] for c in calls] == [episode[0]] * 2
    assert [c[1:5] for c in calls] == [
        ("smollm2", "openai", r.usage.prompt_tokens, r.usage.completion_tokens)
        for r in (first, second)]
    assert [json.loads(c[5]) for c in calls] == [[first.choices[0].finish_reason],
                                                  [second.choices[0].finish_reason]]
    assert [c[6] for c in calls] == [first.id, second.id]
    messages = rows(db_path, "SELECT m.direction, m.role, m.text, m.parts FROM messages m "
                             "JOIN llm_calls l USING (span_id) ORDER BY l.started_at, "
                             "m.direction, m.position")
    assert messages[0][:3] == ("input", "user", "What is the weather in Paris?")
    (tool_part,) = [p for p in json.loads(messages[1][3]) if p["type"] == "tool_call"]
    assert messages[1][:2] == ("output", "assistant")
    assert (tool_part["name"], tool_part["arguments"]) == ("get_weather", done["arguments"])
    second_turn = [m for m in messages[2:] if m[0] == "output"]
    assert second_turn[0][2] == (second.choices[0].message.content or "")
    assert any(m[1] == "tool" and "sunny" in m[3] for m in messages[2:])
    (tool,) = rows(db_path, "SELECT episode_id, tool_name, arguments FROM tool_calls")
    assert tool[:2] == (episode[0], "get_weather")
    assert json.loads(tool[2]) == done["arguments"]
