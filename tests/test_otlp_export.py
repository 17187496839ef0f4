"""Spans also go out over OTLP/HTTP to any collector: a loopback receiver decodes them."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.setup import setup_tracing


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return None


def test_spans_reach_an_otlp_collector_and_the_store(db_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        settings = Settings(db=db_path, exporters=("duckdb", "otlp"), otlp_endpoint=endpoint)
        tracing = setup_tracing(settings, strict=True)
        with tracing.span("chat toy", SpanType.LLM_CALL, {A.GEN_AI_REQUEST_MODEL: "toy"}):
            pass
        tracing.shutdown()
    finally:
        server.shutdown()
    spans = [
        span
        for request in _Receiver.received
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert [s.name for s in spans] == ["chat toy"]
    attrs = {kv.key: kv.value.string_value for kv in spans[0].attributes}
    assert attrs[A.GEN_AI_REQUEST_MODEL] == "toy" and attrs[A.SPAN_TYPE] == "llm_call"
    assert tracing.stats()["otlp"]["spans_written"] == 1
    assert tracing.stats()["duckdb"]["spans_written"] == 1
