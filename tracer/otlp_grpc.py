"""OTLP/gRPC (``TraceService/Export`` and ``LogsService/Export``) for :class:`Collector`.

Same validation, limits, token and ``partial_success`` as OTLP/HTTP. Requests reach the
collector as raw protobuf bytes (no deserialisation by grpcio: the collector's own decoder
is the fast path). Errors follow the OTLP specification's gRPC codes: INVALID_ARGUMENT for
bad data, UNAUTHENTICATED without the token, UNAVAILABLE with ``RetryInfo`` when the store is
busy; grpcio itself answers RESOURCE_EXHAUSTED for a message, compressed or decompressed,
over ``max_body_bytes``. ``grpcio`` is imported only when a gRPC port is served.
"""

from __future__ import annotations

import collections
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.rpc import code_pb2, error_details_pb2

from shardscope.config.errors import ShardscopeError
from shardscope.tracer.collector import LOGS, TRACES, Collector, ExportError, rpc_status
from shardscope.tracer.otlp_decode import PROTOBUF

log = logging.getLogger("shardscope.collector")
SERVICES = {
    TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
}
MAX_WORKERS = 8
MAX_CONCURRENT_RPCS = 16  # beyond this grpcio answers RESOURCE_EXHAUSTED (retried by SDKs)


def _grpc() -> Any:
    try:
        import grpc
    except ImportError:
        raise ShardscopeError(
            "OTLP/gRPC needs grpcio (pip install 'grpcio==1.85.3'); or run collect --no-grpc"
        ) from None
    return grpc


class GrpcServer:
    """A started gRPC server; ``port`` is the one bound (useful with port 0)."""

    def __init__(self, server: Any, port: int) -> None:
        self._server = server
        self.port = port

    def stop(self, grace_s: float = 5.0) -> None:
        self._server.stop(grace_s).wait()


def serve_grpc(collector: Collector, host: str = "127.0.0.1", port: int = 4317) -> GrpcServer:
    """Start serving OTLP/gRPC on ``host:port`` (0: a free port) into ``collector``."""
    grpc = _grpc()
    limit = collector.limits.max_body_bytes
    server = grpc.server(
        ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="shardscope-collect-grpc"),
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
    )
    for signal, service in SERVICES.items():
        handler = grpc.unary_unary_rpc_method_handler(_exporter(grpc, collector, signal))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            service, {"Export": handler}),))
    address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        bound = 0
        log.debug("grpc could not bind %s: %s", address, exc)
    if not bound:
        server.stop(None)
        raise OSError(f"cannot listen on {address} (in use, or not an address of this host)")
    server.start()
    return GrpcServer(server, bound)


def _exporter(grpc: Any, collector: Collector, signal: str) -> Any:
    def export(request: bytes, context: Any) -> bytes:
        metadata = dict(context.invocation_metadata())
        if not collector.authorized(metadata.get("authorization")):
            _abort(grpc, context, ExportError(
                "missing or wrong bearer token: send metadata 'authorization: Bearer <token>' "
                "(OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token>)", 401,
                code_pb2.UNAUTHENTICATED))
        try:
            return collector.export(signal, request, PROTOBUF)
        except ExportError as exc:
            _abort(grpc, context, exc)
        except Exception as exc:  # a bug of ours: say so, keep serving
            log.exception("collect: gRPC request failed")
            _abort(grpc, context, ExportError(f"internal error: {type(exc).__name__}: {exc}", 500,
                                              code_pb2.INTERNAL))
        raise AssertionError("unreachable: abort raises")

    return export


def _abort(grpc: Any, context: Any, exc: ExportError) -> None:
    code = _CODES[exc.grpc_code]
    status = rpc_status(exc.grpc_code, str(exc), exc.retry_after)
    trailing = [("grpc-status-details-bin", status.SerializeToString())]
    if exc.retry_after is not None:
        # The Python SDK's exporter reads this key for its back-off.
        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = exc.retry_after
        trailing.append(("google.rpc.retryinfo-bin", info.SerializeToString()))
    context.abort_with_status(_status_class(grpc)(getattr(grpc.StatusCode, code), str(exc),
                                                  tuple(trailing)))


_CODES = {
    code_pb2.INVALID_ARGUMENT: "INVALID_ARGUMENT", code_pb2.UNAUTHENTICATED: "UNAUTHENTICATED",
    code_pb2.UNAVAILABLE: "UNAVAILABLE", code_pb2.INTERNAL: "INTERNAL",
    code_pb2.RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED", code_pb2.NOT_FOUND: "NOT_FOUND",
    code_pb2.UNIMPLEMENTED: "UNIMPLEMENTED", code_pb2.DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
}
_STATUS_CLASS: list[Any] = []


def _status_class(grpc: Any) -> Any:
    if not _STATUS_CLASS:
        _RpcStatus = collections.namedtuple("_RpcStatus", ("code", "details", "trailing_metadata"))
        _STATUS_CLASS.append(type("RpcStatus", (_RpcStatus, grpc.Status), {}))
    return _STATUS_CLASS[0]
