"""Turn finished OpenTelemetry spans into Arrow tables for the store, faithfully.

Attribute values (str, bool, int, float, bytes, sequences and, since the SDK passes them
through, nested mappings) become JSON: ints of any size stay exact, NaN and +/-Infinity are
written as the JSON extensions DuckDB and Python both read back, bytes become
``{"$bytes": "<base64>"}``. Only lone UTF-16 surrogates, which neither UTF-8 nor DuckDB can
hold, are replaced by U+FFFD.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
from opentelemetry.sdk.trace import ReadableSpan

from tracer import attributes as A

BYTES_KEY = "$bytes"

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=True, separators=(",", ":"), default=lambda o: _default(o)
)
_encode = _encoder.encode


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


def to_json(value: Any) -> str:
    """Encode an attribute value (or a mapping of them) as JSON text the store accepts."""
    return _encode(value)


def _bytes_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and BYTES_KEY in obj and isinstance(obj[BYTES_KEY], str):
        return base64.b64decode(obj[BYTES_KEY])
    return obj


def from_json(text: str | None) -> Any:
    """Decode JSON written by :func:`to_json`, restoring bytes values."""
    if text is None:
        return None
    return json.loads(text, object_hook=_bytes_hook)


def _scrub(text: str | None) -> str | None:
    """Replace lone surrogates (unencodable in UTF-8) with U+FFFD; pairs are kept."""
    if text is None:
        return None
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("span_type", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("run_id", pa.string()),
        ("episode_id", pa.string()),
        ("step_index", pa.int64()),
        ("operation", pa.string()),
        ("provider", pa.string()),
        ("request_model", pa.string()),
        ("response_model", pa.string()),
        ("model_id", pa.string()),
        ("tool_name", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("error_type", pa.string()),
        ("attributes", pa.string()),
        ("events_count", pa.int32()),
        ("links", pa.string()),
        ("resource", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("dropped_attributes", pa.int32()),
        ("dropped_events", pa.int32()),
        ("dropped_links", pa.int32()),
        ("writer_id", pa.string()),
    ]
)

EVENT_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("seq", pa.int32()),
        ("name", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("time_ns", pa.int64()),
        ("attributes", pa.string()),
        ("dropped_attributes", pa.int32()),
    ]
)

# (column, attribute key, converter) for the typed columns promoted out of the attributes.
_PROMOTED: tuple[tuple[str, str, Any], ...] = (
    ("span_type", A.SPAN_TYPE, _as_str),
    ("run_id", A.RUN_ID, _as_str),
    ("episode_id", A.EPISODE_ID, _as_str),
    ("step_index", A.STEP_INDEX, _as_int),
    ("operation", A.GEN_AI_OPERATION_NAME, _as_str),
    ("provider", A.GEN_AI_PROVIDER_NAME, _as_str),
    ("request_model", A.GEN_AI_REQUEST_MODEL, _as_str),
    ("response_model", A.GEN_AI_RESPONSE_MODEL, _as_str),
    ("model_id", A.MODEL_ID, _as_str),
    ("tool_name", A.GEN_AI_TOOL_NAME, _as_str),
    ("input_tokens", A.GEN_AI_USAGE_INPUT_TOKENS, _as_int),
    ("output_tokens", A.GEN_AI_USAGE_OUTPUT_TOKENS, _as_int),
    ("error_type", A.ERROR_TYPE, _as_str),
)
_STRING_COLUMNS = tuple(f.name for f in SPAN_SCHEMA if f.type == pa.string())


class SpanBatch:
    """Column lists for a batch of spans and their events, then Arrow tables."""

    def __init__(self, writer_id: str) -> None:
        self.writer_id = writer_id
        self.spans: dict[str, list[Any]] = {f.name: [] for f in SPAN_SCHEMA}
        self.events: dict[str, list[Any]] = {f.name: [] for f in EVENT_SCHEMA}
        self._resources: dict[int, tuple[Any, str]] = {}
        self.dropped = {"attributes": 0, "events": 0, "links": 0}

    def __len__(self) -> int:
        return len(self.spans["span_id"])

    def _resource_json(self, resource: Any) -> str:
        # One process has one resource object: encode it once per batch, not per span.
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            cached = (resource, to_json(dict(resource.attributes)))
            self._resources[id(resource)] = cached
        return cached[1]

    def add(self, span: ReadableSpan) -> None:
        cols = self.spans
        ctx = span.get_span_context()
        trace_id = format(ctx.trace_id, "032x")
        span_id = format(ctx.span_id, "016x")
        attrs = dict(span.attributes or {})
        start = span.start_time or 0
        end = span.end_time or start
        cols["trace_id"].append(trace_id)
        cols["span_id"].append(span_id)
        cols["parent_span_id"].append(format(span.parent.span_id, "016x") if span.parent else None)
        cols["name"].append(span.name)
        cols["kind"].append(span.kind.name)
        cols["start_time"].append(start // 1000)
        cols["end_time"].append(end // 1000)
        cols["start_ns"].append(start)
        cols["end_ns"].append(end)
        cols["duration_ms"].append((end - start) / 1e6)
        cols["status_code"].append(span.status.status_code.name)
        cols["status_message"].append(span.status.description)
        for column, key, convert in _PROMOTED:
            cols[column].append(convert(attrs.get(key)))
        if cols["span_type"][-1] is None:
            cols["span_type"][-1] = A.SpanType.SPAN
        cols["attributes"].append(_encode(attrs))
        events = span.events
        cols["events_count"].append(len(events))
        links = span.links
        cols["links"].append(_encode([_link(link) for link in links]) if links else None)
        cols["resource"].append(self._resource_json(span.resource))
        scope = span.instrumentation_scope
        cols["scope_name"].append(scope.name if scope else None)
        cols["scope_version"].append(scope.version if scope else None)
        cols["dropped_attributes"].append(span.dropped_attributes)
        cols["dropped_events"].append(span.dropped_events)
        cols["dropped_links"].append(span.dropped_links)
        cols["writer_id"].append(self.writer_id)
        self.dropped["attributes"] += span.dropped_attributes
        self.dropped["events"] += span.dropped_events
        self.dropped["links"] += span.dropped_links
        if events:
            self._add_events(trace_id, span_id, events)

    def _add_events(self, trace_id: str, span_id: str, events: Sequence[Any]) -> None:
        ev = self.events
        for seq, event in enumerate(events):
            ev["trace_id"].append(trace_id)
            ev["span_id"].append(span_id)
            ev["seq"].append(seq)
            ev["name"].append(event.name)
            ev["time"].append(event.timestamp // 1000)
            ev["time_ns"].append(event.timestamp)
            attrs = event.attributes
            ev["attributes"].append(_encode(dict(attrs)) if attrs else "{}")
            ev["dropped_attributes"].append(getattr(attrs, "dropped", 0) or 0)

    def add_all(self, spans: Iterable[ReadableSpan]) -> SpanBatch:
        for span in spans:
            self.add(span)
        return self

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return _table(self.spans, SPAN_SCHEMA), _table(self.events, EVENT_SCHEMA)


def _link(link: Any) -> dict[str, Any]:
    return {
        "trace_id": format(link.context.trace_id, "032x"),
        "span_id": format(link.context.span_id, "016x"),
        "attributes": dict(link.attributes or {}),
    }


def _table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    try:
        return pa.table(columns, schema=schema)
    except (UnicodeEncodeError, pa.ArrowInvalid):
        # Rare: a lone surrogate somewhere. Scrub the string columns and build again.
        fixed = {
            name: [_scrub(v) for v in values] if schema.field(name).type == pa.string() else values
            for name, values in columns.items()
        }
        return pa.table(fixed, schema=schema)
