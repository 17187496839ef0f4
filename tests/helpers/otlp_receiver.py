"""A loopback OTLP/HTTP receiver for tests: it records every POST (path and body) and answers
each as a collector does (an empty Export*ServiceResponse), so the SDK's exporters succeed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


@dataclass
class Received:
    """What the receiver got: ``posts`` as (path, body), in arrival order."""

    endpoint: str
    posts: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def paths(self) -> set[str]:
        return {path for path, _ in self.posts}

    def trace_requests(self) -> list[tuple[int, ExportTraceServiceRequest]]:
        """Each /v1/traces request with its body's size."""
        out = []
        for path, body in self.posts:
            if path == "/v1/traces":
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                out.append((len(body), request))
        return out

    def spans(self) -> list[Span]:
        return [span for _, request in self.trace_requests() for rs in request.resource_spans
                for ss in rs.scope_spans for span in ss.spans]

    def metric_requests(self) -> list[ExportMetricsServiceRequest]:
        out = []
        for path, body in self.posts:
            if path == "/v1/metrics":
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                out.append(request)
        return out


@contextmanager
def otlp_receiver() -> Iterator[Received]:
    """A receiver on a free 127.0.0.1 port for the block's duration."""
    received = Received(endpoint="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.posts.append((self.path, body))
            response = (ExportMetricsServiceResponse() if self.path == "/v1/metrics"
                        else ExportTraceServiceResponse())
            payload = response.SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
