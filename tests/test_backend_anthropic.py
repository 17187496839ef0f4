"""The real ``anthropic`` SDK against a loopback server speaking the Messages API: what we
send (system, tools, tool results), what we read back (text, tool_use, stop reasons, usage),
in JSON and in streaming event form, and the chat span that records it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from shardscope.scaffolds.backends.registry import open_model
from shardscope.scaffolds.types import GenerationConfig, Message, ToolCall, ToolSpec
from tests.servers import fake_provider as fp
from tests.servers.backend_helpers import RecordingSleep, fake_catalog, rows

WEATHER = ToolSpec(
    "weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CONVERSATION = [
    Message("system", "You are terse."),
    Message("user", "Weather in Oslo and Bergen?"),
    Message("assistant", "Checking.", tool_calls=(
        ToolCall("toolu_a", "weather", {"city": "Oslo"}), ToolCall("toolu_b", "weather", {"city": "Bergen"}))),
    Message("tool", "2 C, snow", tool_call_id="toolu_a", name="weather"),
    Message("tool", "6 C, rain", tool_call_id="toolu_b", name="weather"),
]


@pytest.fixture
def model(fake_provider, tmp_path: Path, tracing, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-shapes-0123456789abcdef")
    catalog = fake_catalog(tmp_path, fake_provider.base_url)
    return open_model(catalog.get("fake-anthropic"), tracing, sleep=RecordingSleep())


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_request_translates_system_tools_and_tool_results(model, fake_provider, stream) -> None:
    config = GenerationConfig(temperature=0.2, max_tokens=None, stop=("END",))
    asyncio.run(model.generate(CONVERSATION, [WEATHER], config, stream=stream))
    (sent,) = fake_provider.requests
    body = sent.body

    assert sent.path == "/v1/messages"
    # This SDK version sends the key as a Bearer token; older ones used x-api-key.
    credential = sent.headers.get("x-api-key") or sent.headers.get("Authorization", "")
    assert credential.endswith("sk-ant-test-shapes-0123456789abcdef")
    assert body["system"] == "You are terse."
    assert body["max_tokens"] == 1024  # required by the API: our default when the call has none
    assert body["temperature"] == 0.2 and body["stop_sequences"] == ["END"]
    assert body.get("stream", False) is stream
    assert body["tools"] == [{"name": "weather", "description": "Current weather in a city.",
                              "input_schema": WEATHER.parameters}]
    assert [t["role"] for t in body["messages"]] == ["user", "assistant", "user"]
    assistant, results = body["messages"][1]["content"], body["messages"][2]["content"]
    assert assistant[0] == {"type": "text", "text": "Checking."}
    assert assistant[1] == {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Oslo"}}
    # Two tool messages become one user turn of two tool_result blocks (the API alternates roles).
    assert results == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "2 C, snow"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "6 C, rain"},
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_text_answer_and_its_span(model, fake_provider, tracing, db_path, stream) -> None:
    fake_provider.script(fp.ok("It is snowing in Oslo."))
    output = asyncio.run(model.generate(CONVERSATION[:2], (), GenerationConfig(), stream=stream))
    tracing.shutdown()

    assert output.text == "It is snowing in Oslo."
    assert (output.finish_reason, output.response_id, output.response_model) == ("stop", "msg_fake_1", "claude-fake")
    assert output.usage.input_tokens > 0 and output.usage.output_tokens == 5
    assert output.raw_response["stop_reason"] == "end_turn"  # the provider's own value is kept
    (row,) = rows(db_path, "SELECT * FROM llm_calls")
    assert (row["provider"], row["request_model"], row["response_model"]) == ("anthropic", "claude-fake", "claude-fake")
    assert (row["response_id"], json.loads(row["finish_reasons"])) == ("msg_fake_1", ["stop"])
    assert (row["input_tokens"], row["output_tokens"]) == (output.usage.input_tokens, 5)
    assert row["cost_usd"] == pytest.approx((output.usage.input_tokens * 3.0 + 5 * 15.0) / 1e6)
    assert json.loads(row["raw_request"])["model"] == "claude-fake"
    out_message = json.loads(row["output_messages"])[0]
    assert out_message["parts"] == [{"type": "text", "content": "It is snowing in Oslo."}]
    tokens = rows(db_path, "SELECT token FROM token_events ORDER BY token_index")
    assert [t["token"] for t in tokens] == (["It", " is", " snowing", " in", " Oslo."] if stream else [])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_use_becomes_a_tool_call(model, fake_provider, stream) -> None:
    fake_provider.script(fp.tool("weather", {"city": "Tromsø", "units": "metric"}, text="Let me look."))
    output = asyncio.run(model.generate(CONVERSATION[:2], [WEATHER], GenerationConfig(), stream=stream))

    assert output.text == "Let me look."
    assert output.finish_reason == "tool_calls"
    (call,) = output.tool_calls
    assert (call.id, call.name, call.arguments, call.ok) == (
        "toolu_fake_1", "weather", {"city": "Tromsø", "units": "metric"}, True)
    # The next turn sends the call back as a tool_use block with the same id.
    assert output.message.tool_calls == output.tool_calls
