"""A real agent framework: pydantic-ai's own instrumentation (``invoke_agent`` and ``chat``
spans, GenAI conventions) around the real ``openai`` SDK against the llama.cpp server,
exported to the real collector over OTLP/HTTP and OTLP/gRPC, lands in the views as an episode
of scaffold = the agent's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.helpers.collect import rows, running_collector
from tests.servers.fixtures import LlamaServer

pytest.importorskip("pydantic_ai")


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_pydantic_ai_agent_is_an_episode(db_path: Path, llama_tool_server: LlamaServer,
                                         transport: str) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    with running_collector(db_path, grpc=True) as c:
        exporter: Any
        if transport == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(endpoint=c.grpc_target, insecure=True)
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter as HttpExporter,
            )
            exporter = HttpExporter(endpoint=f"{c.url}/v1/traces")
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        model = OpenAIChatModel("smollm2", provider=OpenAIProvider(
            base_url=llama_tool_server.base_url, api_key="sk-local"))
        agent = Agent(model, name="pai-bot")
        Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
        try:
            result = agent.run_sync("Say hello.", model_settings={"max_tokens": 12,
                                                                  "temperature": 0})
        finally:
            Agent.instrument_all(False)
            provider.shutdown()
    usage = result.usage()
    (episode,) = rows(db_path, "SELECT episode_id, scaffold, model, provider, llm_calls, "
                               "input_tokens, output_tokens FROM episodes")
    assert episode[1:] == ("pai-bot", "smollm2", "openai", 1, usage.input_tokens,
                           usage.output_tokens)
    (call,) = rows(db_path, "SELECT episode_id, model, finish_reasons FROM llm_calls")
    assert call[:2] == (episode[0], "smollm2")
    assert json.loads(call[2]) in (["stop"], ["length"])
    messages = rows(db_path, "SELECT direction, role, text FROM messages ORDER BY direction")
    assert messages[0] == ("input", "user", "Say hello.")
    assert messages[-1][:2] == ("output", "assistant")
    assert messages[-1][2] == result.output
