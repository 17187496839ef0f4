"""A real collector (HTTP and, optionally, gRPC) on 127.0.0.1 free ports, for tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from google.rpc import status_pb2

from shardscope.tracer.collector import Collector, Limits
from shardscope.tracer.otlp_grpc import GrpcServer, serve_grpc
from shardscope.tracer.otlp_http import serve
from shardscope.tracer.store import Store

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@dataclass
class Running:
    url: str
    port: int
    collector: Collector
    grpc: GrpcServer | None
    http: Any = None  # the HTTP server (its connection count, for handshakes)

    @property
    def grpc_target(self) -> str:
        assert self.grpc is not None
        return f"127.0.0.1:{self.grpc.port}"


@contextlib.contextmanager
def running_collector(db: Path, *, grpc: bool = False, token: str | None = None,
                      **limits: Any) -> Iterator[Running]:
    collector = Collector(Store(db, lock_timeout=30), token=token, limits=Limits(**limits))
    server = serve(collector, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    grpc_server = serve_grpc(collector, "127.0.0.1", 0) if grpc else None
    try:
        yield Running(f"http://127.0.0.1:{server.server_port}", server.server_port, collector,
                      grpc_server, server)
    finally:
        if grpc_server is not None:
            grpc_server.stop(0)
        server.shutdown()
        server.server_close()
        collector.close()


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the store (a reader: it waits while the collector writes)."""
    with Store(db).reader() as con:
        return con.execute(sql).fetchall()


def status_message(response: httpx.Response) -> str:
    """The google.rpc.Status message of an error response, in its declared encoding."""
    if response.headers["content-type"] == "application/json":
        return str(response.json()["message"])
    return str(status_pb2.Status.FromString(response.content).message)


def span_json(span_id: str = "b7ad6b7169203331", *, trace_id: str = TRACE_ID,
              name: str = "json span", **extra: Any) -> dict[str, Any]:
    span = {
        "traceId": trace_id, "spanId": span_id, "name": name, "kind": 3,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}}],
    }
    span.update(extra)
    return span


def traces_json(*spans: dict[str, Any], resource: dict[str, Any] | None = None,
                scope: dict[str, Any] | None = None, **scope_spans: Any) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": resource or {"attributes": [
            {"key": "service.name", "value": {"stringValue": "json-client"}}]},
        "scopeSpans": [{"scope": scope or {"name": "j"}, "spans": list(spans or [span_json()]),
                        **scope_spans}],
    }]}


def span_count(db: Path) -> int:
    return int(rows(db, "SELECT count(*) FROM spans")[0][0])
