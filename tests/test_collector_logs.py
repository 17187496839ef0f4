"""`/v1/logs`: GenAI content sent as OTLP log events (what opentelemetry-instrumentation-
openai-v2 2.4b0 emits by default) is stored in `log_events`, joined to its span by trace and
span id whichever arrives first, redacted, and stored once when re-sent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.helpers.collect import TRACE_ID, rows, running_collector

KEY = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2


def _providers(url: str) -> tuple[TracerProvider, LoggerProvider]:
    resource = Resource.create({"service.name": "openai-app"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
    return tracer_provider, logger_provider


def _emit_chat_events(logger, span) -> None:
    """The events openai-v2 2.4b0 emits for one chat call (utils.message_to_event,
    choice_to_event) and opentelemetry-util-genai's operation-details event."""
    context = trace.set_span_in_context(span)
    system = {"gen_ai.system": "openai"}
    logger.emit(LogRecord(event_name="gen_ai.system.message", attributes=system, context=context,
                          body={"content": "You are terse."}))
    logger.emit(LogRecord(event_name="gen_ai.user.message", attributes=system, context=context,
                          body={"content": f"my key is {KEY}, what is 2+2?"}))
    logger.emit(LogRecord(event_name="gen_ai.choice", attributes=system, context=context,
                          body={"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "4"}}))
    logger.emit(LogRecord(event_name="gen_ai.client.inference.operation.details", context=context,
                          attributes={"gen_ai.operation.name": "chat",
                                      "gen_ai.input.messages": json.dumps(
                                          [{"role": "user", "parts": [{"type": "text", "content": "2+2?"}]}])}))


@pytest.mark.parametrize("order", ["span first", "logs first"])
def test_genai_log_events_from_the_sdk_exporter_join_their_span(db_path: Path, order: str) -> None:
    with running_collector(db_path) as c:
        tracer_provider, logger_provider = _providers(c.url)
        tracer = tracer_provider.get_tracer("openai-v2")
        logger = logger_provider.get_logger("openai-v2")
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}) as span:
            if order == "logs first":
                _emit_chat_events(logger, span)  # exported before the span ends
        if order == "span first":
            _emit_chat_events(logger, span)  # exported after the span was stored
        tracer_provider.shutdown()
        logger_provider.shutdown()
        assert c.collector.log_records == 4
    joined = rows(db_path, """
        SELECT l.event_name, l.body, l.attributes, s.name, l.severity_number, l.resource
        FROM log_events l JOIN spans s USING (trace_id, span_id) ORDER BY l.time_ns""")
    assert [r[0] for r in joined] == ["gen_ai.system.message", "gen_ai.user.message",
                                      "gen_ai.choice", "gen_ai.client.inference.operation.details"]
    assert {r[3] for r in joined} == {"chat gpt-4o-mini"}
    user = json.loads(joined[1][1])
    assert user == {"content": "my key is [REDACTED], what is 2+2?"}
    assert json.loads(joined[2][1])["message"]["content"] == "4"
    assert json.loads(joined[3][2])["gen_ai.operation.name"] == "chat"
    assert "openai-app" in joined[0][5]


def _logs_json(body: dict | str, **record: object) -> dict:
    return {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{
        "scope": {"name": "genai"}, "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
        "logRecords": [{"timeUnixNano": "1700000000000000001", "eventName": "gen_ai.user.message",
                        "traceId": TRACE_ID, "spanId": "b7ad6b7169203331",
                        "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": body}}]}}
                        if isinstance(body, str) else body, **record}]}]}]}


def test_log_records_in_json_are_stored_once_when_re_sent(db_path: Path) -> None:
    payload = _logs_json("hello", severityNumber=9, severityText="INFO", futureField=1)
    with running_collector(db_path) as c:
        first = httpx.post(f"{c.url}/v1/logs", json=payload)
        again = httpx.post(f"{c.url}/v1/logs", json=payload)
    assert first.status_code == again.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert rows(db_path, "SELECT event_name, severity_number, severity_text, body, trace_id, "
                "span_id, scope_name, scope_schema_url FROM log_events") == [
        ("gen_ai.user.message", 9, "INFO", '{"content":"hello"}', TRACE_ID, "b7ad6b7169203331",
         "genai", "https://opentelemetry.io/schemas/1.30.0")]


def test_older_event_name_attribute_and_records_without_a_span(db_path: Path) -> None:
    payload = _logs_json("x", attributes=[{"key": "event.name", "value": {"stringValue": "gen_ai.choice"}}])
    record = payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    del record["eventName"], record["traceId"], record["spanId"]
    with running_collector(db_path) as c:
        assert httpx.post(f"{c.url}/v1/logs", json=payload).status_code == 200
    assert rows(db_path, "SELECT event_name, trace_id, span_id FROM log_events") == [
        ("gen_ai.choice", None, None)]


def test_invalid_log_records_are_rejected_one_by_one(db_path: Path) -> None:
    payload = _logs_json("ok")
    bad = dict(payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0], spanId="00ff")
    payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"].append(bad)
    with running_collector(db_path) as c:
        response = httpx.post(f"{c.url}/v1/logs", json=payload,
                              headers={"Content-Type": "application/json"})
        bad_body = httpx.post(f"{c.url}/v1/logs", content=b"\x0a\x05abc",
                              headers={"Content-Type": "application/x-protobuf"})
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "span_id must be 8" in partial["errorMessage"]
    assert bad_body.status_code == 400
    assert rows(db_path, "SELECT count(*) FROM log_events") == [(1,)]
