"""OTLP/HTTP (``/v1/traces``, ``/v1/logs``; protobuf or JSON; gzip) for :class:`Collector`.

HTTP/1.1 with keep-alive. A body is read by ``Content-Length`` or ``Transfer-Encoding:
chunked``, capped at ``max_body_bytes`` before and, streaming, after gzip decompression (so a
small body that inflates enormously is refused after the cap, not after it filled memory).
A request must arrive within ``request_timeout_s`` of its first byte, with no read idle for
more than ``read_timeout_s``; a reaper thread closes connections that overstay. Errors are
``google.rpc.Status`` bodies in the request's encoding, with the status codes the OTLP
specification gives: 400 bad data, 401 no token, 404, 405, 408, 413, 415, 429/503 with
``Retry-After`` when the collector or the store is busy.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from google.rpc import code_pb2

from shardscope.tracer.collector import (
    LOGS,
    TRACES,
    Collector,
    ExportError,
    encode_message,
    rpc_status,
)
from shardscope.tracer.otlp_decode import CONTENT_TYPES, JSON, media_of

log = logging.getLogger("shardscope.collector")
PATHS = {"/v1/traces": TRACES, "/v1/logs": LOGS}
_READ_CHUNK = 1 << 20
_GZIP = ("gzip", "x-gzip")
_IDENTITY = ("", "identity")


class HttpError(ExportError):
    """A transport-level failure; ``close`` when the rest of the request was not read."""

    def __init__(self, status: int, message: str, grpc_code: int, *, close: bool = True,
                 retry_after: int | None = None) -> None:
        super().__init__(message, status, grpc_code, retry_after)
        self.close = close


def _too_large(limit: int, what: str) -> HttpError:
    return HttpError(413, f"{what} exceeds the limit of {limit:,} bytes (collect "
                     "--max-body-mib); send smaller batches", code_pb2.RESOURCE_EXHAUSTED)


class _Budget:
    """Bytes of request bodies held at once, across connections (bounds the memory used)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._cond = threading.Condition()

    def take(self, n: int, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self.used and self.used + n > self.capacity:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HttpError(429, f"the collector is holding {self.used:,} bytes of "
                                    "requests; retry later", code_pb2.UNAVAILABLE, retry_after=1)
                self._cond.wait(remaining)
            self.used += n

    def give(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class OtlpHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server feeding one :class:`Collector`; call ``serve_forever``."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], collector: Collector) -> None:
        self.collector = collector
        self.limits = collector.limits
        self.budget = _Budget(self.limits.max_inflight_bytes)
        self._active = 0
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._reaping = threading.Event()
        super().__init__(address, _Handler)
        self._reaper = threading.Thread(target=self._reap, name="shardscope-collect-reaper",
                                        daemon=True)
        self._reaper.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self._active >= self.limits.max_connections
            if not full:
                self._active += 1
        if full:  # answer at once rather than queue a thread per connection
            _refuse(request, self.limits.max_connections)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._active -= 1
                self._deadlines.pop(request, None)

    def set_deadline(self, connection: socket.socket, deadline: float | None) -> None:
        with self._lock:
            if deadline is None:
                self._deadlines.pop(connection, None)
            else:
                self._deadlines[connection] = deadline

    def _reap(self) -> None:
        while not self._reaping.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [c for c, deadline in self._deadlines.items() if deadline < now]
                for connection in late:
                    del self._deadlines[connection]
            for connection in late:
                log.info("collect: closing a connection whose request took over %ss",
                         self.limits.request_timeout_s)
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def server_close(self) -> None:
        self._reaping.set()
        super().server_close()


def _refuse(request: socket.socket, limit: int) -> None:
    payload = encode_message(rpc_status(code_pb2.UNAVAILABLE, f"the collector serves {limit} "
                                        "connections at once; retry later", 1), JSON)
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
    try:
        request.sendall(head.encode("ascii") + payload)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "shardscope-collect"
    sys_version = ""
    server: OtlpHttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.limits.read_timeout_s)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        try:
            # wait (up to read_timeout_s) for the next request
            if not cast(io.BufferedReader, self.rfile).peek(1):
                self.close_connection = True
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        self.server.set_deadline(self.connection,
                                 time.monotonic() + self.server.limits.request_timeout_s)
        try:
            super().handle_one_request()
        finally:  # answered: an idle keep-alive connection is bounded by read_timeout_s
            self.server.set_deadline(self.connection, None)

    def do_POST(self) -> None:
        media = media_of(self.headers.get("Content-Type", ""))
        reply_media = media or JSON
        held = 0
        try:
            signal = self._signal()
            body, held = self._body()
            self.server.set_deadline(self.connection, None)
            payload = self.server.collector.export(signal, body, media or JSON)
        except ExportError as exc:
            self._fail(exc, reply_media)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception as exc:  # a bug of ours: say so, keep serving
            log.exception("collect: request failed")
            self._fail(ExportError(f"internal error: {type(exc).__name__}: {exc}", 500,
                                   code_pb2.INTERNAL), reply_media)
        else:
            self._respond(200, payload, reply_media)
        finally:
            if held:
                self.server.budget.give(held)

    def do_GET(self) -> None:
        self._not_allowed()

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_DELETE(self) -> None:
        self._not_allowed()

    def _not_allowed(self) -> None:
        self._fail(HttpError(405, f"{self.command} is not OTLP: POST to /v1/traces or /v1/logs",
                             code_pb2.UNIMPLEMENTED), JSON, allow="POST")

    # --- the request --------------------------------------------------------------------
    def _signal(self) -> str:
        collector = self.server.collector
        if not collector.authorized(self.headers.get("Authorization")):
            raise HttpError(401, "missing or wrong bearer token: send 'Authorization: Bearer "
                            "<token>' (OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token>)",
                            code_pb2.UNAUTHENTICATED)
        path = self.path.split("?", 1)[0]
        signal = PATHS.get(path)
        if signal is None:
            raise HttpError(404, f"no OTLP endpoint {path}: POST traces to /v1/traces and logs "
                            "to /v1/logs", code_pb2.NOT_FOUND)
        if media_of(self.headers.get("Content-Type", "")) is None:
            raise HttpError(415, f"unsupported Content-Type {self.headers.get('Content-Type')!r}: "
                            "send application/x-protobuf or application/json",
                            code_pb2.INVALID_ARGUMENT)
        return signal

    def _body(self) -> tuple[bytes, int]:
        """The request body, decompressed, and the budget bytes it holds."""
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
        if encoding not in _GZIP and encoding not in _IDENTITY:
            raise HttpError(415, f"unsupported Content-Encoding {encoding!r}: send gzip or none",
                            code_pb2.INVALID_ARGUMENT)
        held = [0]
        try:
            body = self._raw_body(held)
            if encoding in _GZIP:
                body = self._gunzip(body, held)
        except BaseException:
            self.server.budget.give(held[0])
            raise
        return body, held[0]

    def _take(self, held: list[int], n: int, wait_s: float = 0.0) -> None:
        self.server.budget.take(n, wait_s)
        held[0] += n

    def _raw_body(self, held: list[int]) -> bytes:
        limit = self.server.limits.max_body_bytes
        transfer = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if transfer:
            if transfer != "chunked":
                raise HttpError(400, f"unsupported Transfer-Encoding {transfer!r}",
                                code_pb2.INVALID_ARGUMENT)
            self.close_connection = self.close_connection or "Content-Length" in self.headers
            return self._read_chunked(limit, held)
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not values:
            return b""  # HTTP/1.1: no length and not chunked means no body
        value = values.pop()
        if values or not value.isdigit():
            raise HttpError(400, f"bad Content-Length {self.headers.get('Content-Length')!r}",
                            code_pb2.INVALID_ARGUMENT)
        length = int(value)
        if length > limit:
            raise _too_large(limit, f"the body ({length:,} bytes)")
        self._take(held, length, self.server.limits.queue_wait_s)
        return self._read_exact(length)

    def _read_exact(self, n: int) -> bytes:
        parts, remaining = [], n
        while remaining:
            try:
                chunk = self.rfile.read1(min(remaining, _READ_CHUNK))
            except TimeoutError:
                raise HttpError(408, f"the body stopped arriving for "
                                f"{self.server.limits.read_timeout_s:g}s",
                                code_pb2.DEADLINE_EXCEEDED) from None
            if not chunk:
                raise ConnectionError("the client closed the connection mid-body")
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def _line(self) -> bytes:
        try:
            line = self.rfile.readline(1026)
        except TimeoutError:
            raise HttpError(408, "the chunked body stopped arriving", code_pb2.DEADLINE_EXCEEDED
                            ) from None
        if not line:
            raise ConnectionError("the client closed the connection mid-body")
        if not line.endswith(b"\n"):
            raise HttpError(400, "malformed chunked body (line too long)",
                            code_pb2.INVALID_ARGUMENT)
        return line

    def _read_chunked(self, limit: int, held: list[int]) -> bytes:
        parts, total = [], 0
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                size = -1
            if size < 0 or size_text[:1] in (b"+", b"-"):
                raise HttpError(400, f"malformed chunk size {size_text[:20]!r}",
                                code_pb2.INVALID_ARGUMENT)
            if size == 0:
                break
            total += size
            if total > limit:
                raise _too_large(limit, "the chunked body")
            self._take(held, size, self.server.limits.queue_wait_s if not held[0] else 0.0)
            parts.append(self._read_exact(size))
            if self._line().strip():
                raise HttpError(400, "malformed chunked body (no CRLF after a chunk)",
                                code_pb2.INVALID_ARGUMENT)
        while self._line().strip():  # trailer fields: read and ignored
            pass
        return b"".join(parts)

    def _gunzip(self, body: bytes, held: list[int]) -> bytes:
        """Decompress in bounded steps: the cap applies to what comes out, as it comes."""
        limit = self.server.limits.max_body_bytes
        parts, total, data = [], 0, body
        try:
            while data:
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                while data:
                    out = inflater.decompress(data, _READ_CHUNK)
                    total += len(out)
                    if total > limit:
                        raise _too_large(limit, "the decompressed body")
                    if out:
                        self._take(held, len(out))
                        parts.append(out)
                    data = inflater.unconsumed_tail
                    if inflater.eof:
                        break
                if not inflater.eof:
                    raise HttpError(400, "Content-Encoding is gzip but the body is truncated",
                                    code_pb2.INVALID_ARGUMENT, close=False)
                data = inflater.unused_data  # another gzip member follows
        except zlib.error as exc:
            raise HttpError(400, f"Content-Encoding is gzip but the body is not gzip data ({exc})",
                            code_pb2.INVALID_ARGUMENT, close=False) from None
        return b"".join(parts)

    # --- the response -------------------------------------------------------------------
    def _fail(self, exc: ExportError, media: str, allow: str | None = None) -> None:
        close = getattr(exc, "close", False)
        if exc.http_status >= 500 or exc.http_status == 429:
            log.warning("collect: %s %s: %s", exc.http_status, self.path, exc)
        else:
            log.info("collect: %s %s: %s", exc.http_status, self.path, exc)
        status = rpc_status(exc.grpc_code, str(exc), exc.retry_after)
        headers = {"Allow": allow} if allow else {}
        self._respond(exc.http_status, encode_message(status, media), media, close=close,
                      retry_after=exc.retry_after, headers=headers)

    def _respond(self, status: int, payload: bytes, media: str, *, close: bool = False,
                 retry_after: int | None = None, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPES[media])
            self.send_header("Content-Length", str(len(payload)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="shardscope collect"')
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client is gone
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _OtlpHttp6Server(OtlpHttpServer):
    address_family = socket.AF_INET6


def serve(collector: Collector, host: str = "127.0.0.1", port: int = 4318) -> OtlpHttpServer:
    """An OTLP/HTTP server on ``host:port`` (0: a free port) feeding ``collector``; not yet
    serving: call ``serve_forever`` (and ``shutdown``/``server_close`` to stop)."""
    cls = _OtlpHttp6Server if ":" in host else OtlpHttpServer
    return cls((host.strip("[]"), port), collector)
