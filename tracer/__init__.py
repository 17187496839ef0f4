"""Tracing core: OpenTelemetry setup, attribute names, the DuckDB store and its queries."""

from tracer import attributes
from tracer.attributes import Outcome, SpanType
from tracer.setup import TracingSession, setup_tracing
from tracer.spans import TracedSpan, Tracing
from tracer.store import Store

__all__ = [
    "Outcome",
    "SpanType",
    "Store",
    "TracedSpan",
    "Tracing",
    "TracingSession",
    "attributes",
    "setup_tracing",
]
