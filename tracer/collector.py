"""``shardscope collect``: an OTLP/HTTP trace receiver that writes into the store.

Any OpenTelemetry SDK (any language) can export spans to ``http://127.0.0.1:4318/v1/traces``
and they land in the same tables and views as shardscope's own runs. Bodies may be OTLP
protobuf or OTLP JSON, optionally gzip-compressed. A body that is not OTLP gets a 400 with
the reason; spans that are invalid on their own (bad ids, end before start) are rejected
one by one and reported through OTLP's ``partial_success``; everything valid is written and
flushed to the store before the response is sent.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from shardscope.tracer.pipeline import ReliableSpanProcessor
from shardscope.tracer.sinks import DuckDBSink
from shardscope.tracer.store import Store

log = logging.getLogger("shardscope.collector")
MAX_BODY_BYTES = 64 * 1024 * 1024
_KINDS = {0: SpanKind.INTERNAL, 1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT,
          4: SpanKind.PRODUCER, 5: SpanKind.CONSUMER}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}


class PayloadError(ValueError):
    """The request body is not an OTLP trace export (HTTP 400)."""


@dataclass(frozen=True)
class Decoded:
    spans: list[ReadableSpan]
    rejected: list[str]  # one reason per rejected span


def parse_request(body: bytes, content_type: str, content_encoding: str = "") -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP trace body (protobuf or JSON, optionally gzip)."""
    if content_encoding.strip().lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise PayloadError(f"Content-Encoding is gzip but the body is not gzip data ({exc})") from None
    request = ExportTraceServiceRequest()
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"body is not valid JSON: {exc}") from None
        try:
            json_format.ParseDict(_hex_ids_to_base64(document), request)
        except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
            raise PayloadError(f"JSON body is not an OTLP ExportTraceServiceRequest: {exc}") from None
        return request
    if media in ("application/x-protobuf", "application/protobuf"):
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise PayloadError(f"body is not an OTLP ExportTraceServiceRequest (protobuf): {exc}") from None
        return request
    raise PayloadError(
        f"unsupported Content-Type {content_type!r}: send application/x-protobuf or application/json"
    )


def _hex_ids_to_base64(document: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise PayloadError(f"{key} {value!r} is not hex") from None
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(document, list):
        return [_hex_ids_to_base64(v) for v in document]
    return document


def decode_spans(request: ExportTraceServiceRequest) -> Decoded:
    """OTLP spans as SDK ReadableSpans (what our pipeline stores); invalid ones rejected."""
    spans: list[ReadableSpan] = []
    rejected: list[str] = []
    for resource_spans in request.resource_spans:
        resource = Resource(_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope = InstrumentationScope(scope_spans.scope.name, scope_spans.scope.version or None)
            for pb in scope_spans.spans:
                problem = _span_problem(pb)
                if problem:
                    rejected.append(f"span {pb.name!r}: {problem}")
                    continue
                spans.append(_readable(pb, resource, scope))
    return Decoded(spans, rejected)


def _span_problem(pb: Any) -> str | None:
    if len(pb.trace_id) != 16 or not any(pb.trace_id):
        return f"trace_id must be 16 non-zero bytes, got {len(pb.trace_id)}"
    if len(pb.span_id) != 8 or not any(pb.span_id):
        return f"span_id must be 8 non-zero bytes, got {len(pb.span_id)}"
    if pb.parent_span_id and len(pb.parent_span_id) != 8:
        return f"parent_span_id must be 8 bytes, got {len(pb.parent_span_id)}"
    if pb.end_time_unix_nano and pb.end_time_unix_nano < pb.start_time_unix_nano:
        return "end_time_unix_nano is before start_time_unix_nano"
    return None


def _readable(pb: Any, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    trace_id = int.from_bytes(pb.trace_id, "big")
    context = SpanContext(trace_id, int.from_bytes(pb.span_id, "big"), is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    parent = None
    if pb.parent_span_id:
        parent = SpanContext(trace_id, int.from_bytes(pb.parent_span_id, "big"), is_remote=True)
    attributes = BoundedAttributes(attributes=_attributes(pb.attributes), immutable=False)
    attributes.dropped = pb.dropped_attributes_count
    events = [Event(e.name, _attributes(e.attributes), e.time_unix_nano) for e in pb.events]
    links = [
        Link(SpanContext(int.from_bytes(link.trace_id, "big"), int.from_bytes(link.span_id, "big"),
                         is_remote=True), _attributes(link.attributes))
        for link in pb.links
        if len(link.trace_id) == 16 and len(link.span_id) == 8
    ]
    return ReadableSpan(
        name=pb.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=_KINDS.get(pb.kind, SpanKind.INTERNAL),
        status=Status(_STATUS.get(pb.status.code, StatusCode.UNSET), pb.status.message or None),
        start_time=pb.start_time_unix_nano,
        end_time=pb.end_time_unix_nano or pb.start_time_unix_nano,
        instrumentation_scope=scope,
    )


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if kv.key}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


class Collector:
    """Owns the store's span pipeline for received spans."""

    def __init__(self, store: Store, *, flush_timeout_s: float = 60.0) -> None:
        self.store = store
        self.processor = ReliableSpanProcessor(DuckDBSink(store, "shardscope-collector"))
        self.flush_timeout_s = flush_timeout_s
        self.accepted = 0
        self.rejected = 0
        self._lock = threading.Lock()

    def ingest(self, body: bytes, content_type: str, content_encoding: str = "") -> ExportTraceServiceResponse:
        decoded = decode_spans(parse_request(body, content_type, content_encoding))
        for span in decoded.spans:
            self.processor.on_end(span)
        if decoded.spans and not self.processor.force_flush(int(self.flush_timeout_s * 1000)):
            raise TimeoutError(f"the store did not take the spans within {self.flush_timeout_s:.0f}s")
        with self._lock:
            self.accepted += len(decoded.spans)
            self.rejected += len(decoded.rejected)
        response = ExportTraceServiceResponse()
        if decoded.rejected:
            response.partial_success.rejected_spans = len(decoded.rejected)
            response.partial_success.error_message = "; ".join(decoded.rejected[:20])
        return response

    def close(self) -> None:
        self.processor.shutdown()


def serve(collector: Collector, host: str = "127.0.0.1", port: int = 4318) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving: call ``serve_forever``) that feeds ``collector``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "shardscope-collector"

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/v1/traces":
                self._reply(404, {"error": f"no endpoint {self.path}; POST OTLP traces to /v1/traces"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(413, {"error": f"body of {length} bytes exceeds {MAX_BODY_BYTES}"})
                return
            body = self.rfile.read(length)
            content_type = self.headers.get("Content-Type", "")
            try:
                response = collector.ingest(body, content_type, self.headers.get("Content-Encoding", ""))
            except PayloadError as exc:
                status = 415 if "Content-Type" in str(exc) else 400
                self._reply(status, {"error": str(exc)})
                return
            except TimeoutError as exc:
                self._reply(503, {"error": str(exc)}, retry_after=5)
                return
            if content_type.startswith("application/json"):
                payload = json_format.MessageToJson(response).encode("utf-8")
                self._send(200, payload, "application/json")
            else:
                self._send(200, response.SerializeToString(), "application/x-protobuf")

        def _reply(self, status: int, data: dict[str, Any], retry_after: int | None = None) -> None:
            self._send(status, json.dumps(data).encode("utf-8"), "application/json", retry_after)

        def _send(self, status: int, payload: bytes, media: str, retry_after: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(payload)))
            if retry_after:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

    return ThreadingHTTPServer((host, port), Handler)
