"""``setup_tracing``: a TracerProvider whose spans reach the store (and OTLP, console)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from shardscope import __version__
from shardscope.config.settings import Settings, load_settings
from shardscope.tracer.lake_sink import ParquetSink
from shardscope.tracer.pipeline import ReliableSpanProcessor, Sink
from shardscope.tracer.redact import Redactor
from shardscope.tracer.sinks import DuckDBSink, ExporterSink
from shardscope.tracer.spans import ContextAttributesProcessor, SpanPolicy, Tracing
from shardscope.tracer.store import Store

log = logging.getLogger("shardscope.tracer")

# Token streams put one event per token on a chat span and prompts can be long: the SDK's
# defaults (128 events, no length cap) would silently truncate a 512-token answer.
SPAN_LIMITS = SpanLimits(
    max_events=100_000,
    max_span_attributes=1_000,
    max_event_attributes=64,
    max_links=1_000,
    max_attribute_length=SpanLimits.UNSET,
)


class TracingSession(Tracing):
    """A :class:`Tracing` that owns its provider and exporters; shut it down when done."""

    def __init__(
        self,
        provider: TracerProvider,
        processors: Sequence[ReliableSpanProcessor],
        policy: SpanPolicy,
        settings: Settings,
        store: Store | None,
    ) -> None:
        super().__init__(provider.get_tracer("shardscope", __version__), policy)
        self.provider = provider
        self.processors = list(processors)
        self.settings = settings
        self.store = store
        self._shut = False

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Write everything buffered; True when all exporters finished in time."""
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        if not self._shut:
            self._shut = True
            self.provider.shutdown()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per exporter: received, written, backpressure, errors, spilled, lost."""
        return {p.sink.name: p.stats.snapshot() for p in self.processors}

    def __enter__(self) -> TracingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def setup_tracing(
    settings: Settings | None = None,
    *,
    db: str | os.PathLike[str] | None = None,
    lake: str | os.PathLike[str] | None = None,
    exporters: Sequence[str] | None = None,
    capture_content: bool | None = None,
    service_name: str | None = None,
    install_signal_handlers: bool = False,
    set_global: bool = False,
    extra_sinks: Sequence[Sink] = (),
    strict: bool | None = None,
) -> TracingSession:
    """Build a tracer whose spans go to the exporters the settings name.

    Arguments override settings (which come from environment, config file, defaults). With
    ``install_signal_handlers`` SIGTERM unwinds the program like Ctrl-C, so buffered spans
    are flushed on both; the provider flushes at interpreter exit in any case.
    """
    settings = (settings or load_settings()).replace(
        db=db, lake=lake, exporters=exporters, capture_content=capture_content, service_name=service_name
    )
    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": __version__,
            "host.name": socket.gethostname(),
            "process.pid": os.getpid(),
        }
    )
    provider = TracerProvider(resource=resource, span_limits=SPAN_LIMITS)
    provider.add_span_processor(ContextAttributesProcessor())
    store = Store(settings.db, settings.lock_timeout) if "duckdb" in settings.exporters else None
    sinks: list[Sink] = [*_sinks_for(settings, store), *extra_sinks]
    processors = [
        ReliableSpanProcessor(
            sink,
            max_buffered=settings.max_buffered_spans,
            flush_interval=settings.flush_interval,
            strict=strict,
        )
        for sink in sinks
    ]
    for processor in processors:
        provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    if install_signal_handlers:
        _unwind_on_sigterm()
    policy = SpanPolicy(settings.capture_content, Redactor())
    return TracingSession(provider, processors, policy, settings, store)


def _sinks_for(settings: Settings, store: Store | None) -> list[Sink]:
    sinks: list[Sink] = []
    if store is not None:
        sinks.append(DuckDBSink(store, settings.service_name))
    if "parquet" in settings.exporters and settings.lake is not None:
        sinks.append(ParquetSink(settings.lake, settings.service_name))
    if "otlp" in settings.exporters:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint or ""
        if not endpoint.rstrip("/").endswith("/v1/traces"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        sinks.append(ExporterSink(OTLPSpanExporter(endpoint=endpoint), "otlp"))
    if "console" in settings.exporters:
        sinks.append(ExporterSink(ConsoleSpanExporter(), "console"))
    return sinks


def _unwind_on_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
