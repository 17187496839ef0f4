"""OTLP requests of bounded size: at most 512 spans each, and a cap on token events per span.

The pipeline hands its sinks batches of up to 20,000 spans, and an LLM span carries one event
per streamed token; one such batch as one OTLP request reached tens of MiB, and collectors
refuse requests over 64 MiB (the SDK exporter then drops them). The store keeps every token;
over OTLP a span keeps its first ``MAX_TOKEN_EVENTS`` token events and says how many it left
off (``shardscope.token.events_dropped``, ``shardscope.token.events_sent``), and a batch goes
out as requests of at most ``MAX_SPANS`` spans (the SDK's own batch size) and about
``MAX_REQUEST_BYTES``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shardscope.tracer import attributes as A
from shardscope.tracer.pipeline import PipelineStats
from shardscope.tracer.sinks import ExporterSink, ExportFailed

MAX_SPANS = 512
MAX_TOKEN_EVENTS = 256
# A request is closed once its spans' estimated encoded size passes this (a quarter of the
# 64 MiB collectors accept, so a span whose estimate is off by 2x still fits easily).
MAX_REQUEST_BYTES = 16 * 1024 * 1024
_SPAN_OVERHEAD = 200  # ids, times, kind, status, scope: bytes of a span beyond its payload
_EVENT_OVERHEAD = 40


@dataclass
class BoundedBatch:
    """A sink batch cut into requests; ``sent`` counts the requests delivered so far, so a
    retried write resumes after them instead of sending them again."""

    requests: list[list[ReadableSpan]]
    events_dropped: int
    sent: int = 0
    counted: bool = field(default=False)


def cap_token_events(span: ReadableSpan, limit: int = MAX_TOKEN_EVENTS) -> tuple[ReadableSpan, int]:
    """The span with at most ``limit`` token events (other events all kept), and how many
    token events it lost; the span itself when it has no more than ``limit``."""
    events = span.events
    tokens = sum(1 for e in events if e.name == A.EVENT_TOKEN)
    if tokens <= limit:
        return span, 0
    kept: list[Event] = []
    seen = 0
    for event in events:
        if event.name == A.EVENT_TOKEN:
            seen += 1
            if seen > limit:
                continue
        kept.append(event)
    dropped = tokens - limit
    attributes = {**(span.attributes or {}), A.TOKEN_EVENTS_DROPPED: dropped,
                  A.TOKEN_EVENTS_SENT: limit}
    capped = ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=attributes, events=kept, links=span.links, kind=span.kind,
        status=span.status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
    return capped, dropped


def estimated_size(span: ReadableSpan) -> int:
    """Roughly the span's encoded size in bytes (strings dominate; numbers count a few)."""
    size = _SPAN_OVERHEAD + len(span.name)
    for key, value in (span.attributes or {}).items():
        size += len(key) + _value_size(value)
    for event in span.events:
        size += _EVENT_OVERHEAD + len(event.name)
        for key, value in (event.attributes or {}).items():
            size += len(key) + _value_size(value)
    return size


def _value_size(value: object) -> int:
    if isinstance(value, (str, bytes)):
        return len(value) + 4
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) for v in value) + 4
    if isinstance(value, dict):
        return sum(len(str(k)) + _value_size(v) for k, v in value.items()) + 4
    return 10


def requests_of(spans: Sequence[ReadableSpan], max_spans: int = MAX_SPANS,
                max_bytes: int = MAX_REQUEST_BYTES) -> Iterator[list[ReadableSpan]]:
    """Consecutive groups of at most ``max_spans`` spans and about ``max_bytes`` (a single
    span bigger than that goes alone)."""
    current: list[ReadableSpan] = []
    size = 0
    for span in spans:
        span_size = estimated_size(span)
        if current and (len(current) >= max_spans or size + span_size > max_bytes):
            yield current
            current, size = [], 0
        current.append(span)
        size += span_size
    if current:
        yield current


class BoundedOTLPSink(ExporterSink):
    """The OTLP exporter as a secondary sink, fed requests of bounded size."""

    def __init__(self, exporter: SpanExporter, name: str = "otlp", *,
                 max_spans: int = MAX_SPANS, max_token_events: int = MAX_TOKEN_EVENTS,
                 max_bytes: int = MAX_REQUEST_BYTES) -> None:
        super().__init__(exporter, name)
        self.max_spans = max_spans
        self.max_token_events = max_token_events
        self.max_bytes = max_bytes

    def prepare(self, spans: Sequence[ReadableSpan]) -> BoundedBatch:  # type: ignore[override]
        capped, dropped = [], 0
        for span in spans:
            kept, lost = cap_token_events(span, self.max_token_events)
            capped.append(kept)
            dropped += lost
        return BoundedBatch(list(requests_of(capped, self.max_spans, self.max_bytes)), dropped)

    def write(self, prepared: BoundedBatch, stats: PipelineStats) -> None:  # type: ignore[override]
        if not prepared.counted:
            prepared.counted = True
            stats.add(events_dropped=prepared.events_dropped)
        while prepared.sent < len(prepared.requests):
            request = prepared.requests[prepared.sent]
            result = self.exporter.export(request)
            if result is not SpanExportResult.SUCCESS:
                raise ExportFailed(f"{self.name} exporter returned {result.name}")
            prepared.sent += 1
            stats.add(spans_written=len(request), batches=1)
