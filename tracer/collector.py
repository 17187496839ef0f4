"""``shardscope collect``: an OTLP receiver (HTTP and gRPC, traces and logs) that writes into
the store.

Any OpenTelemetry SDK, in any language, can export to it: spans land in the same tables and
views as shardscope's own runs, log records (where GenAI instrumentations put message
content) in ``log_events``, joined to their spans by trace and span id. This module is the
transport-neutral part: limits, authentication, decoding, the store, and OTLP's response
and error shapes. :mod:`shardscope.tracer.otlp_http` and :mod:`shardscope.tracer.otlp_grpc`
carry requests to :meth:`Collector.export`. docs/collect.md describes the behaviour.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from shardscope.tracer.otlp_decode import (
    JSON,
    Decoded,
    Decoder,
    PayloadError,
    parse_logs,
    parse_traces,
)
from shardscope.tracer.otlp_ingest import Busy, IngestWriter
from shardscope.tracer.redact import Redactor
from shardscope.tracer.store import Store

log = logging.getLogger("shardscope.collector")
MIB = 1024 * 1024
TRACES = "traces"
LOGS = "logs"
SIGNALS = (TRACES, LOGS)


@dataclass(frozen=True)
class Limits:
    """What one collector accepts; the defaults follow the OTLP specification's advice."""

    max_body_bytes: int = 20 * MIB  # per request, compressed and again decompressed
    max_inflight_bytes: int = 80 * MIB  # bodies being read or decoded at once
    max_pending_rows: int = 200_000  # decoded rows waiting for the store
    queue_wait_s: float = 2.0  # a request waits this long for room before "retry later"
    ack_timeout_s: float = 8.0  # ... and this long for its commit (SDK exporters wait 10 s)
    read_timeout_s: float = 30.0  # one socket read, and an idle keep-alive connection
    request_timeout_s: float = 60.0  # a whole HTTP request, from its first byte
    max_connections: int = 64  # HTTP connections served at once; more get 503


class ExportError(Exception):
    """A request that fails as a whole, with its HTTP status and gRPC code."""

    def __init__(self, message: str, http_status: int, grpc_code: int,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.grpc_code = grpc_code
        self.retry_after = retry_after


def bad_request(message: str) -> ExportError:
    return ExportError(message, 400, code_pb2.INVALID_ARGUMENT)


def rpc_status(code: int, message: str, retry_after: int | None = None) -> Any:
    """A ``google.rpc.Status`` (with ``RetryInfo`` when the client should come back later)."""
    status = status_pb2.Status(code=code, message=message)
    if retry_after is not None:
        status.details.add().Pack(error_details_pb2.RetryInfo(
            retry_delay=Duration(seconds=retry_after)))
    return status


def encode_message(message: Any, media: str) -> bytes:
    """A protobuf message in the request's encoding (OTLP answers in the type it was sent)."""
    if media == JSON:
        return str(json_format.MessageToJson(message, indent=None)).encode("utf-8")
    return bytes(message.SerializeToString())


class Collector:
    """Receives OTLP export requests and stores them; shared by the HTTP and gRPC servers."""

    def __init__(self, store: Store, *, token: str | None = None, limits: Limits | None = None,
                 redactor: Redactor | None = None) -> None:
        with store.writer():
            pass  # a store that cannot be opened or migrated fails now, not on the first span
        self.store = store
        self.limits = limits or Limits()
        self.token = token or None
        self.writer = IngestWriter(store, max_pending_rows=self.limits.max_pending_rows)
        if redactor is None:
            # The token is a secret too, wherever it came from.
            environ = dict(os.environ)
            if token:
                environ["SHARDSCOPE_COLLECT_TOKEN"] = token
            redactor = Redactor(environ)
        self.decoder = Decoder(redactor, self.writer.writer_id)
        self._expected = f"Bearer {token}".encode() if token else b""
        self._lock = threading.Lock()
        self.rejected = 0

    @property
    def accepted(self) -> int:
        """Spans written to the store (re-sent duplicates not counted)."""
        return int(self.writer.stats.snapshot()["spans_written"])

    @property
    def duplicates(self) -> int:
        return self.writer.duplicates

    @property
    def log_records(self) -> int:
        return self.writer.log_records

    def authorized(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries the token (always, without one)."""
        if not self.token:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        given = f"Bearer {credentials.strip()}".encode() if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(given, self._expected)

    def export(self, signal: str, body: bytes, media: str) -> bytes:
        """Store one export request (already read and decompressed); returns the response
        body in ``media``. Raises :class:`ExportError` for a request that fails whole."""
        try:
            if signal == TRACES:
                chunks = self.decoder.trace_chunks(parse_traces(body, media))
            else:
                chunks = iter([self.decoder.logs(parse_logs(body, media))])
        except PayloadError as exc:
            raise bad_request(str(exc)) from None
        last = Decoded()

        def tracked(chunks: Iterator[Decoded]) -> Iterator[Decoded]:
            nonlocal last
            for chunk in chunks:  # the last one carries the request's rejections
                last = chunk
                yield chunk

        try:
            self.writer.write(tracked(chunks), queue_wait_s=self.limits.queue_wait_s,
                              ack_timeout_s=self.limits.ack_timeout_s)
        except Busy as exc:
            raise ExportError(str(exc), 503, code_pb2.UNAVAILABLE, exc.retry_after) from None
        with self._lock:
            self.rejected += last.rejected_count
        return encode_message(_response(signal, last), media)

    def close(self) -> None:
        """Write what is queued and release the store (stop the servers first)."""
        self.writer.close()


def _response(signal: str, decoded: Decoded) -> Any:
    response: Any
    if signal == TRACES:
        response = ExportTraceServiceResponse()
        if decoded.rejected:
            response.partial_success.rejected_spans = decoded.rejected_count
    else:
        response = ExportLogsServiceResponse()
        if decoded.rejected:
            response.partial_success.rejected_log_records = decoded.rejected_count
    if decoded.rejected:
        response.partial_success.error_message = "; ".join(decoded.rejected[:20])
    return response
