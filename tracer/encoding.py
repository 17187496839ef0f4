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
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa
from opentelemetry.sdk.trace import ReadableSpan

from shardscope.tracer import attributes as A

BYTES_KEY = "$bytes"

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=True, separators=(",", ":"), default=lambda o: _default(o)
)
_encode = _encoder.encode
_orjson_dumps = orjson.dumps


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


def encode_attributes(attributes: dict[str, Any]) -> str | bytes:
    """Fast JSON (UTF-8 bytes from orjson, ~10x the stdlib) with the stdlib as the exact path.

    orjson writes NaN and Infinity as null and refuses ints beyond 64 bits and lone
    surrogates; whenever its output contains ``null`` or it refuses, the stdlib encoder
    (which keeps NaN/Infinity and big ints) produces the value instead.
    """
    try:
        out = _orjson_dumps(attributes, default=_default)
    except (TypeError, orjson.JSONEncodeError):
        return _encode(attributes)
    return _encode(attributes) if b"null" in out else out


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


def _plain_attributes(attributes: Any) -> dict[str, Any]:
    """The attribute dict of a span or event, without copying through the Mapping ABC."""
    if not attributes:
        return {}
    inner = getattr(attributes, "_dict", None)  # BoundedAttributes keeps a plain dict
    return inner if isinstance(inner, dict) else dict(attributes)


# Columns built in Python: identity, timing, status and the raw JSON. The typed columns
# promoted out of the attributes are extracted by DuckDB, in C++, during the INSERT
# (see INSERT_SPANS): that halves the Python work per span.
BATCH_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
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

# (column, attribute key, SQL type) promoted out of the attributes at insert time.
PROMOTED: tuple[tuple[str, str, str], ...] = (
    ("span_type", A.SPAN_TYPE, "VARCHAR"),
    ("run_id", A.RUN_ID, "VARCHAR"),
    ("episode_id", A.EPISODE_ID, "VARCHAR"),
    ("step_index", A.STEP_INDEX, "BIGINT"),
    ("operation", A.GEN_AI_OPERATION_NAME, "VARCHAR"),
    ("provider", A.GEN_AI_PROVIDER_NAME, "VARCHAR"),
    ("request_model", A.GEN_AI_REQUEST_MODEL, "VARCHAR"),
    ("response_model", A.GEN_AI_RESPONSE_MODEL, "VARCHAR"),
    ("model_id", A.MODEL_ID, "VARCHAR"),
    ("tool_name", A.GEN_AI_TOOL_NAME, "VARCHAR"),
    ("input_tokens", A.GEN_AI_USAGE_INPUT_TOKENS, "BIGINT"),
    ("output_tokens", A.GEN_AI_USAGE_OUTPUT_TOKENS, "BIGINT"),
    ("error_type", A.ERROR_TYPE, "VARCHAR"),
)


def insert_spans_sql(source: str) -> str:
    """INSERT of a batch (BATCH_SCHEMA) into ``spans``, promoting columns in one JSON parse."""
    return "INSERT INTO spans BY NAME " + promoted_select_sql(source)


def promoted_select_sql(source: str) -> str:
    """A batch (BATCH_SCHEMA) with the promoted columns, as the ``spans`` table stores it."""
    paths = ", ".join(f"'$.\"{key}\"'" for _, key, _ in PROMOTED)
    columns = []
    for i, (column, _, sql_type) in enumerate(PROMOTED, start=1):
        value = f"_p[{i}]" if sql_type == "VARCHAR" else f"TRY_CAST(_p[{i}] AS {sql_type})"
        if column == "span_type":
            value = f"coalesce({value}, '{A.SpanType.SPAN}')"
        columns.append(f"{value} AS {column}")
    return (
        "SELECT * EXCLUDE (_p), " + ", ".join(columns) + " FROM "
        f"(SELECT *, json_extract_string(attributes, [{paths}]) AS _p FROM {source})"
    )


class SpanBatch:
    """Column lists for a batch of spans and their events, then Arrow tables."""

    def __init__(self, writer_id: str) -> None:
        self.writer_id = writer_id
        self.spans: dict[str, list[Any]] = {f.name: [] for f in BATCH_SCHEMA}
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
        # Reads ReadableSpan's fields directly: its properties copy events and links into
        # new tuples and wrap attributes in a proxy, which doubled the cost of this loop.
        # The SDK is pinned; tests cover this against it.
        c = self.spans
        ctx = span._context
        assert ctx is not None  # the SDK gives every span it ends a context
        trace_id = format(ctx.trace_id, "032x")
        span_id = format(ctx.span_id, "016x")
        start = span._start_time or 0
        end = span._end_time or start
        parent = span._parent
        status = span._status
        attributes = span._attributes
        events = span._events
        links = span._links
        scope = span._instrumentation_scope
        c["trace_id"].append(trace_id)
        c["span_id"].append(span_id)
        c["parent_span_id"].append(format(parent.span_id, "016x") if parent else None)
        c["name"].append(span._name)
        c["kind"].append(span._kind.name)
        c["start_time"].append(start // 1000)
        c["end_time"].append(end // 1000)
        c["start_ns"].append(start)
        c["end_ns"].append(end)
        c["duration_ms"].append((end - start) / 1e6)
        c["status_code"].append(status.status_code.name)
        c["status_message"].append(status.description)
        c["attributes"].append(encode_attributes(_plain_attributes(attributes)))
        c["events_count"].append(len(events) if events else 0)
        c["links"].append(_encode([_link(link) for link in links]) if links else None)
        c["resource"].append(self._resource_json(span._resource))
        c["scope_name"].append(scope.name if scope else None)
        c["scope_version"].append(scope.version if scope else None)
        dropped = (
            getattr(attributes, "dropped", 0),
            getattr(events, "dropped", 0),
            getattr(links, "dropped", 0),
        )
        c["dropped_attributes"].append(dropped[0])
        c["dropped_events"].append(dropped[1])
        c["dropped_links"].append(dropped[2])
        c["writer_id"].append(self.writer_id)
        if dropped[0] or dropped[1] or dropped[2]:
            for key, count in zip(("attributes", "events", "links"), dropped, strict=True):
                self.dropped[key] += count
        if events:
            self._add_events(trace_id, span_id, events)

    def _add_events(self, trace_id: str, span_id: str, events: Sequence[Any]) -> None:
        ev = self.events
        for seq, event in enumerate(events):
            ev["trace_id"].append(trace_id)
            ev["span_id"].append(span_id)
            ev["seq"].append(seq)
            ev["name"].append(event.name)
            timestamp = event.timestamp
            ev["time"].append(timestamp // 1000)
            ev["time_ns"].append(timestamp)
            attrs = event._attributes
            ev["attributes"].append(encode_attributes(_plain_attributes(attrs)) if attrs else "{}")
            ev["dropped_attributes"].append(getattr(attrs, "dropped", 0) or 0)

    def add_all(self, spans: Iterable[ReadableSpan], yield_every: int = 0) -> SpanBatch:
        """Add spans; with ``yield_every`` > 0, release the GIL that often (see DuckDBSink)."""
        add = self.add
        if not yield_every:
            for span in spans:
                add(span)
            return self
        for i, span in enumerate(spans, start=1):
            add(span)
            if i % yield_every == 0:
                time.sleep(0)
        return self

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return _table(self.spans, BATCH_SCHEMA), _table(self.events, EVENT_SCHEMA)


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
