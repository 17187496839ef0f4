"""OTLP/gRPC: the SDK's real gRPC exporters into `collect`, with the same validation, token,
limits and partial_success as OTLP/HTTP, and the gRPC codes the OTLP specification gives."""

from __future__ import annotations

import gzip
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shardscope.tracer.store import Store
from tests.helpers.collect import rows, running_collector, span_json, traces_json

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _request(*spans: dict) -> bytes:
    from google.protobuf import json_format

    from shardscope.tracer.otlp_decode import _hex_ids_to_base64

    request = ExportTraceServiceRequest()
    json_format.ParseDict(_hex_ids_to_base64(traces_json(*spans)), request)
    return request.SerializeToString()


def _call(target: str, body: bytes, metadata: tuple = (), compression=None) -> tuple:
    """A raw unary Export call: (response bytes or None, RpcError or None)."""
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)]) as channel:
        export = channel.unary_unary(TRACES)
        try:
            return export(body, metadata=metadata, timeout=30, compression=compression), None
        except grpc.RpcError as error:
            return None, error


def test_the_sdk_grpc_exporters_deliver_spans_and_logs(db_path: Path) -> None:
    with running_collector(db_path, grpc=True, token="s3cret-token-123") as c:
        headers = (("authorization", "Bearer s3cret-token-123"),)
        resource = Resource.create({"service.name": "grpc-app"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
            endpoint=c.grpc_target, insecure=True, headers=headers)))
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
            endpoint=c.grpc_target, insecure=True, headers=headers)))
        tracer = tracer_provider.get_tracer("t")
        with tracer.start_as_current_span("invoke_agent a"), tracer.start_as_current_span(
                "chat m", attributes={"gen_ai.usage.output_tokens": 5}) as span:
            logger_provider.get_logger("l").emit(LogRecord(
                event_name="gen_ai.choice", body={"index": 0, "finish_reason": "stop"},
                context=trace.set_span_in_context(span)))
        tracer_provider.shutdown()
        logger_provider.shutdown()
    assert rows(db_path, "SELECT name, output_tokens FROM spans ORDER BY name") == [
        ("chat m", 5), ("invoke_agent a", None)]
    assert rows(db_path, "SELECT l.event_name, s.name FROM log_events l JOIN spans s "
                "USING (trace_id, span_id)") == [("gen_ai.choice", "chat m")]


def test_grpc_without_the_token_is_unauthenticated(db_path: Path) -> None:
    with running_collector(db_path, grpc=True, token="s3cret-token-123") as c:
        _, missing = _call(c.grpc_target, _request())
        _, wrong = _call(c.grpc_target, _request(), (("authorization", "Bearer nope"),))
        exporter = OTLPSpanExporter(endpoint=c.grpc_target, insecure=True, timeout=5)
        result = exporter.export([_sdk_span()])
        exporter.shutdown()
    assert missing.code() == wrong.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "bearer token" in missing.details()
    assert result is SpanExportResult.FAILURE
    assert rows(db_path, "SELECT count(*) FROM spans") == [(0,)]


def _sdk_span():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("x"):
        pass
    provider.shutdown()
    return memory.get_finished_spans()[0]


def test_grpc_bad_data_is_invalid_argument_with_a_status(db_path: Path) -> None:
    with running_collector(db_path, grpc=True) as c:
        _, error = _call(c.grpc_target, b"\x0a\xff\xff")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    assert status_pb2.Status.FromString(details).code == code_pb2.INVALID_ARGUMENT


def test_grpc_partial_success_and_duplicates(db_path: Path) -> None:
    good, bad = span_json("00000000000000e1"), span_json("00", name="short id")
    with running_collector(db_path, grpc=True) as c:
        first, _ = _call(c.grpc_target, _request(good, bad))
        again, _ = _call(c.grpc_target, _request(good))
    partial = ExportTraceServiceResponse.FromString(first).partial_success
    assert partial.rejected_spans == 1 and "span_id must be 8" in partial.error_message
    assert not ExportTraceServiceResponse.FromString(again).HasField("partial_success")
    assert rows(db_path, "SELECT count(*) FROM spans") == [(1,)]


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip])
def test_grpc_messages_over_the_limit_are_refused(db_path: Path, compression) -> None:
    big = span_json("00000000000000f1", attributes=[
        {"key": "blob", "value": {"stringValue": "x" * (3 * 1024 * 1024)}}])
    body = _request(big)
    assert len(gzip.compress(body)) < 1024 * 1024 < len(body)
    with running_collector(db_path, grpc=True, max_body_bytes=1024 * 1024) as c:
        _, error = _call(c.grpc_target, body, compression=compression)
        ok, _ = _call(c.grpc_target, _request())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ok is not None and rows(db_path, "SELECT count(*) FROM spans") == [(1,)]


def test_grpc_busy_store_is_unavailable_with_retry_info(db_path: Path) -> None:
    with running_collector(db_path, grpc=True, queue_wait_s=0.2, ack_timeout_s=0.5) as c:
        c.collector.writer.sink.idle()
        with Store(db_path).lock.exclusive():
            _, error = _call(c.grpc_target, _request())
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    trailing = dict(error.trailing_metadata())
    info = error_details_pb2.RetryInfo.FromString(trailing["google.rpc.retryinfo-bin"])
    assert info.retry_delay.seconds >= 1
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
