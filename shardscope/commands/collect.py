"""`shardscope collect`: the OTLP receiver (HTTP and gRPC) in front of the store."""

from __future__ import annotations

import functools
import ipaddress
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from shardscope.config.errors import ShardscopeError
from shardscope.config.settings import load_settings
from shardscope.tracer.collector import MIB, Collector, Limits
from shardscope.tracer.otlp_grpc import GrpcServer, serve_grpc
from shardscope.tracer.otlp_http import OtlpHttpServer, serve
from shardscope.tracer.store import Store


@dataclass(frozen=True)
class CollectOptions:
    host: str = "127.0.0.1"
    port: int = 4318  # OTLP/HTTP; 0 picks a free port
    grpc_port: int = 4317  # OTLP/gRPC; 0 serves no gRPC
    token: str | None = None
    max_body_mib: float = 20.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_options(options: CollectOptions) -> None:
    """One clear error for options that cannot work, before anything is opened."""
    for flag, port in (("--port", options.port), ("--grpc-port", options.grpc_port)):
        if not 0 <= port <= 65535:
            raise ShardscopeError(f"{flag} must be a port between 0 and 65535, got {port}")
    if options.grpc_port and options.grpc_port == options.port:
        raise ShardscopeError(f"--port and --grpc-port are both {options.port}: give gRPC its "
                              "own port (4317 is OTLP/gRPC's standard), or --no-grpc")
    if options.token is not None and not options.token.strip():
        raise ShardscopeError("the collect token is empty: pass --token with a value, or unset it")
    if not is_loopback(options.host) and not options.token:
        raise ShardscopeError(
            f"--host {options.host} accepts spans from other machines, so collect needs a "
            "token: pass --token (or set SHARDSCOPE_COLLECT_TOKEN) and send it as "
            "'Authorization: Bearer <token>'"
        )
    if not 0 < options.max_body_mib <= 1024:
        raise ShardscopeError(f"--max-body-mib must be > 0 and <= 1024, got {options.max_body_mib:g}")


def collect_from_cli(db: Path | None, host: str, port: int, grpc_port: int, token: str | None,
                     max_body_mib: float) -> int:
    """``shardscope collect``: options checked first, the token from the settings if not given."""
    settings = load_settings(db=db, collect_token=token)
    options = CollectOptions(host, port, grpc_port, settings.collect_token, max_body_mib)
    return collect_command(Store(settings.db, settings.lock_timeout), options)


def collect_command(store: Store, options: CollectOptions) -> int:
    """Serve OTLP into ``store`` until Ctrl-C or SIGTERM; returns the exit code."""
    check_options(options)
    max_body = int(options.max_body_mib * MIB)
    limits = Limits(max_body_bytes=max_body, max_inflight_bytes=max(4 * max_body, 64 * MIB))
    collector = Collector(store, token=options.token, limits=limits)
    http_server: OtlpHttpServer | None = None
    grpc_server: GrpcServer | None = None
    try:
        http_server, grpc_server = _start(collector, options)
        _serve_until_stopped(http_server, functools.partial(
            _announce, store, options, http_server.server_port, grpc_server))
    finally:
        if grpc_server is not None:
            grpc_server.stop()
        if http_server is not None:
            http_server.server_close()
        collector.close()
        print(f"stopped: {collector.accepted} spans and {collector.log_records} log records "
              f"stored, {collector.duplicates} re-sent duplicates dropped, "
              f"{collector.rejected} rejected", flush=True)
    return 0


def _start(
    collector: Collector, options: CollectOptions
) -> tuple[OtlpHttpServer, GrpcServer | None]:
    try:
        http_server = serve(collector, options.host, options.port)
    except OSError as exc:
        raise ShardscopeError(f"cannot listen on {options.host}:{options.port} (HTTP): "
                              f"{exc.strerror or exc}") from None
    if not options.grpc_port:
        return http_server, None
    try:
        return http_server, serve_grpc(collector, options.host, options.grpc_port)
    except (OSError, ShardscopeError) as exc:
        http_server.server_close()
        raise ShardscopeError(f"cannot serve OTLP/gRPC on {options.host}:{options.grpc_port}: "
                              f"{exc}; choose another --grpc-port, or --no-grpc") from None


def _announce(
    store: Store, options: CollectOptions, http_port: int, grpc_server: GrpcServer | None
) -> None:
    base = f"http://{options.host}:{http_port}"
    print(f"collecting OTLP/HTTP on {base}/v1/traces and {base}/v1/logs", flush=True)
    if grpc_server is not None:
        print(f"collecting OTLP/gRPC on {options.host}:{grpc_server.port}", flush=True)
    auth = "bearer token required" if options.token else "no token (loopback only)"
    print(f"into {store.path}; {auth}; Ctrl-C stops", flush=True)


def _serve_until_stopped(http_server: OtlpHttpServer, announce: Callable[[], None]) -> None:
    """Announce, then serve until Ctrl-C or SIGTERM. Both are handled from before the
    announcement: a client that signals as soon as it reads it stops the collector cleanly."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, stop)
    try:
        announce()
        http_server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
