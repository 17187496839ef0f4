"""tracer/semantic.py: what each convention's attributes become (unit level; the collector
path is in tests/test_collector_semantic.py and tests/test_collector_interop.py)."""

from __future__ import annotations

import json

from shardscope.tracer import attributes as A
from shardscope.tracer.semantic import SourceSpan, map_span

START = 1_700_000_000_000_000_000


def test_openinference_llm_span() -> None:
    attrs = {
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-x", "llm.provider": "openai",
        "llm.token_count.prompt": 11, "llm.token_count.completion": 4,
        "llm.invocation_parameters": json.dumps({"model": "gpt-x", "temperature": 0.2, "seed": 3}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "be brief",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "hi",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "f",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"x": 1}',
        "output.mime_type": "application/json",
        "output.value": json.dumps({"id": "r1", "model": "gpt-x-2025",
                                    "choices": [{"finish_reason": "tool_calls"}]}),
    }
    out = map_span(SourceSpan("ChatCompletion", attrs, START,
                              events=[(START + 250_000_000, "First Token Stream Event", {})]))
    assert out[A.SPAN_TYPE] == "llm_call" and out[A.GEN_AI_OPERATION_NAME] == "chat"
    assert (out[A.MODEL_ID], out[A.GEN_AI_RESPONSE_MODEL], out[A.GEN_AI_PROVIDER_NAME]) == (
        "gpt-x", "gpt-x-2025", "openai")
    assert (out[A.GEN_AI_USAGE_INPUT_TOKENS], out[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (11, 4)
    assert (out[A.GEN_AI_REQUEST_TEMPERATURE], out[A.GEN_AI_REQUEST_SEED]) == (0.2, 3)
    assert out[A.GEN_AI_RESPONSE_ID] == "r1"
    assert out[A.GEN_AI_RESPONSE_FINISH_REASONS] == ["tool_calls"]
    assert out[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == 0.25
    assert json.loads(out[A.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert json.loads(out[A.GEN_AI_OUTPUT_MESSAGES]) == [{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c1", "name": "f", "arguments": {"x": 1}}],
        "finish_reason": "tool_calls"}]
    assert out[A.MAPPED_CONVENTION] == "openinference"
    assert set(out[A.MAPPED_KEYS]) == set(out) - {A.MAPPED_KEYS}


def test_openinference_tool_and_agent_spans() -> None:
    tool = map_span(SourceSpan("lookup", {"openinference.span.kind": "TOOL", "tool.name": "lookup",
                                          "input.value": '{"q": 1}', "output.value": "42"}))
    assert (tool[A.SPAN_TYPE], tool[A.GEN_AI_TOOL_NAME], tool[A.GEN_AI_TOOL_CALL_ARGUMENTS],
            tool[A.GEN_AI_TOOL_CALL_RESULT]) == ("tool_call", "lookup", '{"q": 1}', "42")
    agent = map_span(SourceSpan("Researcher", {"openinference.span.kind": "AGENT"}))
    assert (agent[A.SPAN_TYPE], agent[A.SCAFFOLD_NAME]) == ("episode", "Researcher")
    assert map_span(SourceSpan("retrieve", {"openinference.span.kind": "RETRIEVER"})) == {}


def test_deprecated_gen_ai_names() -> None:
    attrs = {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-x",
             "gen_ai.usage.prompt_tokens": 9, "gen_ai.usage.completion_tokens": 2,
             "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "2+2?",
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "4",
             "gen_ai.completion.0.finish_reason": "stop"}
    out = map_span(SourceSpan("anthropic.chat", attrs))
    assert (out[A.SPAN_TYPE], out[A.GEN_AI_OPERATION_NAME], out[A.GEN_AI_PROVIDER_NAME]) == (
        "llm_call", "chat", "anthropic")
    assert (out[A.GEN_AI_USAGE_INPUT_TOKENS], out[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (9, 2)
    assert json.loads(out[A.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "4"}], "finish_reason": "stop"}]
    assert out[A.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]


def test_content_as_span_events_and_error_type() -> None:
    events = [(START, "gen_ai.user.message", {"content": "hi"}),
              (START, "gen_ai.choice", {"index": 0, "finish_reason": "length",
                                        "message": {"content": "hel"}}),
              (START, "exception", {"exception.type": "TimeoutError"})]
    out = map_span(SourceSpan("chat m", {"gen_ai.operation.name": "chat",
                                         "gen_ai.request.model": "m"}, START,
                              status_error=True, events=events))
    assert json.loads(out[A.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hi"
    assert out[A.GEN_AI_RESPONSE_FINISH_REASONS] == ["length"]
    assert out[A.ERROR_TYPE] == "TimeoutError"


def test_source_attributes_are_never_replaced_and_own_spans_untouched() -> None:
    out = map_span(SourceSpan("chat m", {"gen_ai.operation.name": "chat", "gen_ai.system": "a",
                                         "gen_ai.provider.name": "b", "gen_ai.request.model": "m"}))
    assert A.GEN_AI_PROVIDER_NAME not in out
    assert map_span(SourceSpan("chat m", {"shardscope.span.type": "llm_call",
                                          "gen_ai.system": "a"})) == {}
    assert map_span(SourceSpan("GET /", {"http.method": "GET"}, is_root=True)) == {}
