"""OTLP export bodies → Arrow tables shaped like the store's ``spans``, ``span_events`` and
``log_events``, with every string redacted.

A request is parsed once into the wire-compatible lite messages of
:mod:`shardscope.tracer.otlp_lite`; OTLP/JSON is first read into the real protobuf message
(unknown fields ignored, hex ids) and re-serialised, so both encodings take one path. Each
attribute arrives as its raw ``KeyValue`` bytes; what it becomes in the stored JSON (a
``"key":value`` fragment, already redacted) is cached by those bytes, so an attribute that
repeats across spans is decoded once. Spans that are invalid on their own are rejected one by
one with a reason (OTLP ``partial_success``); a body that is not OTLP raises
:class:`PayloadError`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from shardscope.tracer import attributes as A
from shardscope.tracer import semantic
from shardscope.tracer.encoding import BATCH_SCHEMA, EVENT_SCHEMA, encode_attributes, to_json
from shardscope.tracer.otlp_lite import LiteLogsRequest, LiteTraceRequest
from shardscope.tracer.redact import Redactor

PROTOBUF = "protobuf"
JSON = "json"
MEDIA_TYPES = {"application/x-protobuf": PROTOBUF, "application/protobuf": PROTOBUF,
               "application/json": JSON}
CONTENT_TYPES = {PROTOBUF: "application/x-protobuf", JSON: "application/json"}

_KINDS = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")  # 0 = unspecified
_STATUS = ("UNSET", "OK", "ERROR")
_MAX_NS = 2**63 - 1
_ZERO_SPAN_ID = bytes(8)
_CACHE_ENTRIES = 65_536  # attribute fragments; cleared whole when full
_CACHE_MAX_RAW = 512  # bytes: longer attributes (message content) are decoded every time
# Spans per chunk handed to the store while the rest of the request is decoded. Only big
# requests are split: an SDK's 512-span export is one chunk, since an INSERT per 128 spans
# cost more than the overlap saved (bench/collect.py: 1 sender 0.40 vs 0.68 of in-process).
CHUNK_ROWS = 4096

SPAN_SCHEMA = pa.schema([
    *BATCH_SCHEMA,
    ("trace_state", pa.string()),
    ("flags", pa.int64()),
    ("resource_schema_url", pa.string()),
    ("resource_dropped_attributes", pa.int32()),
    ("scope_schema_url", pa.string()),
    ("scope_attributes", pa.string()),
    ("scope_dropped_attributes", pa.int32()),
])
LOG_SCHEMA = pa.schema([
    ("trace_id", pa.string()), ("span_id", pa.string()), ("event_name", pa.string()),
    ("time", pa.timestamp("us", tz="UTC")), ("time_ns", pa.int64()),
    ("observed_time_ns", pa.int64()), ("severity_number", pa.int32()),
    ("severity_text", pa.string()), ("body", pa.string()), ("attributes", pa.string()),
    ("flags", pa.int64()), ("dropped_attributes", pa.int32()), ("resource", pa.string()),
    ("resource_schema_url", pa.string()), ("scope_name", pa.string()),
    ("scope_version", pa.string()), ("scope_attributes", pa.string()),
    ("scope_schema_url", pa.string()), ("record_id", pa.string()), ("writer_id", pa.string()),
])


class PayloadError(ValueError):
    """The request body is not an OTLP export request (HTTP 400, gRPC INVALID_ARGUMENT)."""


class Rejected(ValueError):
    """One span or log record is invalid; the rest of the request is kept."""


@dataclass(eq=False)
class Decoded:
    """One request's rows, ready for the store; ``keys`` identify them for de-duplication."""

    spans: pa.Table | None = None
    events: pa.Table | None = None
    logs: pa.Table | None = None
    keys: list[Any] = field(default_factory=list)  # (trace_id, span_id) or log record_id
    lo_ns: int = 0  # start (spans) or time (logs) range of the rows, for the store lookup
    hi_ns: int = 0
    rejected: list[str] = field(default_factory=list)  # reasons, one per rejected group
    rejected_count: int = 0  # spans or log records rejected
    # traces whose episodes to settle after the write (tracer/episodes.py): those with spans
    # another instrumentation made, or with log records
    traces: set[str] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return len(self.keys)


# --- bodies -------------------------------------------------------------------------------
def media_of(content_type: str) -> str | None:
    """``protobuf`` or ``json`` for an OTLP Content-Type; None when it is neither."""
    return MEDIA_TYPES.get(content_type.split(";")[0].strip().lower())


def parse_traces(body: bytes, media: str) -> Any:
    """An ExportTraceServiceRequest body as a lite message."""
    if media == JSON:
        body = _json_to_protobuf(body, ExportTraceServiceRequest(), "ExportTraceServiceRequest")
    return _parse_lite(LiteTraceRequest, body, "ExportTraceServiceRequest")


def parse_logs(body: bytes, media: str) -> Any:
    """An ExportLogsServiceRequest body as a lite message."""
    if media == JSON:
        body = _json_to_protobuf(body, ExportLogsServiceRequest(), "ExportLogsServiceRequest")
    return _parse_lite(LiteLogsRequest, body, "ExportLogsServiceRequest")


def _parse_lite(cls: Any, body: bytes, what: str) -> Any:
    try:
        return cls.FromString(body)
    except DecodeError as exc:
        raise PayloadError(f"body is not an OTLP {what} (protobuf): {exc}") from None


def _json_to_protobuf(body: bytes, message: Any, what: str) -> bytes:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    try:
        # The OTLP spec: receivers MUST ignore fields with unknown names.
        json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
    except RecursionError:
        raise PayloadError(f"JSON body is not an OTLP {what}: nested too deeply") from None
    except (json_format.ParseError, TypeError, ValueError, AttributeError, SystemError) as exc:
        # SystemError: protobuf's C layer refusing a lone surrogate (JSON allows "\ud800")
        raise PayloadError(f"JSON body is not an OTLP {what}: {exc}") from None
    return bytes(message.SerializeToString())


_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id",
                          "parent_span_id"})


def _hex_ids_to_base64(document: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            if key in _HEX_ID_KEYS and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise PayloadError(f"{key} {value!r} is not hex") from None
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(document, list):
        return [_hex_ids_to_base64(v) for v in document]
    return document


# --- values -------------------------------------------------------------------------------
def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as the Python value the SDK would have held."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    return getattr(value, kind)


def key_values(pairs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs if kv.key}


def _parse(cls: Any, raw: bytes, what: str) -> Any:
    try:
        return cls.FromString(raw)
    except DecodeError as exc:
        raise Rejected(f"{what} is not valid protobuf ({exc})") from None


def _ns(value: int, what: str) -> int:
    if value > _MAX_NS:
        raise Rejected(f"{what} {value} is out of range")
    return value


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:  # NaN, Infinity, ints beyond 64 bits: the stdlib's JSON
        value = json.loads(raw)
    return value if isinstance(value, dict) else {}


def _hex_id(raw: bytes, size: int, what: str, *, optional: bool = False) -> str | None:
    if optional and (not raw or raw == bytes(size)):
        return None
    if len(raw) != size or not any(raw):
        raise Rejected(f"{what} must be {size} non-zero bytes, got {len(raw)}")
    return raw.hex()


class Decoder:
    """Turns lite OTLP requests into store rows; one per collector (its caches are shared)."""

    def __init__(self, redactor: Redactor, writer_id: str) -> None:
        self.redactor = redactor
        self.writer_id = writer_id
        self._fragments: dict[bytes, tuple[str, bytes]] = {}
        self._names: dict[str, str] = {}
        self._statuses: dict[bytes, tuple[str, str | None]] = {}
        self._resources: dict[bytes, tuple[str, int]] = {}
        self._scopes: dict[bytes, tuple[str | None, str | None, str | None, int]] = {}
        # The first table built imports pandas inside pyarrow (~1 s): not in a request.
        _table({f.name: [] for f in SPAN_SCHEMA}, SPAN_SCHEMA)

    # --- cached pieces ------------------------------------------------------------------
    def _fragment(self, raw: bytes) -> tuple[str, bytes]:
        kv = _parse(KeyValue, raw, "an attribute")
        value = self.redactor.value(any_value(kv.value))
        encoded = encode_attributes({kv.key: value})
        fragment = (encoded.encode("utf-8") if isinstance(encoded, str) else encoded)[1:-1]
        result = (kv.key, fragment)
        if len(raw) <= _CACHE_MAX_RAW:
            if len(self._fragments) >= _CACHE_ENTRIES:
                self._fragments.clear()
            self._fragments[raw] = result
        return result

    def attributes_json(self, raws: Iterable[bytes]) -> bytes:
        """JSON object text of raw KeyValues (redacted; the last of a repeated key wins)."""
        return b"{" + b",".join(self._key_fragments(raws).values()) + b"}"

    def _key_fragments(self, raws: Iterable[bytes]) -> dict[str, bytes]:
        get = self._fragments.get
        fragments: dict[str, bytes] = {}
        for raw in raws:
            pair = get(raw) or self._fragment(raw)
            if pair[0]:
                fragments[pair[0]] = pair[1]
        return fragments

    def span_attributes(self, s: Any, start: int, is_root: bool,
                        events: list[tuple[int, str, bytes, int]]) -> tuple[bytes, bool]:
        """A span's attribute JSON, with what :func:`semantic.map_span` adds when another
        instrumentation made it; and whether it did (shardscope's own spans are untouched)."""
        fragments = self._key_fragments(s.attributes)
        if A.SPAN_TYPE in fragments:
            return b"{" + b",".join(fragments.values()) + b"}", False
        if is_root or semantic.worth_mapping(fragments):
            values = json.loads(b"{" + b",".join(fragments.values()) + b"}")
            source = semantic.SourceSpan(
                name=self._name(s.name), attributes=values, start_ns=start, is_root=is_root,
                status_error=bool(s.status) and self._status(s.status)[0] == "ERROR",
                events=[(t, name, json.loads(raw)) for t, name, raw, _ in events])
            for key, value in semantic.map_span(source).items():
                encoded = encode_attributes({key: value})
                fragments[key] = (encoded.encode("utf-8") if isinstance(encoded, str)
                                  else encoded)[1:-1]
        return b"{" + b",".join(fragments.values()) + b"}", True

    def redact_streams(self, events: list[tuple[int, str, bytes, int]]
                       ) -> list[tuple[int, str, bytes, int]]:
        """A span's events with each stream (a token stream: one token per event) redacted
        as the text it spells (:meth:`Redactor.streams`)."""
        parsed = [_loads(raw) for _, _, raw, _ in events]
        changed = self.redactor.streams([name for _, name, _, _ in events], parsed)
        out = list(events)
        for i in changed:
            encoded = encode_attributes(parsed[i])
            raw = encoded.encode("utf-8") if isinstance(encoded, str) else encoded
            out[i] = (events[i][0], events[i][1], raw, events[i][3])
        return out

    def _name(self, name: str) -> str:
        cached = self._names.get(name)
        if cached is None:
            cached = self.redactor.text(name)
            if len(self._names) >= _CACHE_ENTRIES:
                self._names.clear()
            self._names[name] = cached
        return cached

    def _status(self, raw: bytes) -> tuple[str, str | None]:
        cached = self._statuses.get(raw)
        if cached is None:
            status = _parse(Status, raw, "the status")
            code = _STATUS[status.code] if 0 <= status.code < len(_STATUS) else "UNSET"
            cached = (code, self.redactor.text(status.message) if status.message else None)
            if len(raw) <= _CACHE_MAX_RAW and len(self._statuses) < _CACHE_ENTRIES:
                self._statuses[raw] = cached
        return cached

    def _resource(self, raw: bytes) -> tuple[str, int]:
        cached = self._resources.get(raw)
        if cached is None:
            resource = _parse(Resource, raw, "the resource")
            attributes = self.redactor.value(key_values(resource.attributes))
            cached = (to_json(attributes), resource.dropped_attributes_count)
            if len(self._resources) >= 1024:
                self._resources.clear()
            self._resources[raw] = cached
        return cached

    def _scope(self, raw: bytes) -> tuple[str | None, str | None, str | None, int]:
        cached = self._scopes.get(raw)
        if cached is None:
            scope = _parse(InstrumentationScope, raw, "the instrumentation scope")
            attributes = self.redactor.value(key_values(scope.attributes))
            cached = (scope.name or None, scope.version or None,
                      to_json(attributes) if attributes else None, scope.dropped_attributes_count)
            if len(self._scopes) >= 1024:
                self._scopes.clear()
            self._scopes[raw] = cached
        return cached

    # --- spans --------------------------------------------------------------------------
    def traces(self, request: Any) -> Decoded:
        """All the rows of a trace export request at once."""
        chunks = list(self.trace_chunks(request, chunk_rows=0))
        return chunks[0]

    def trace_chunks(self, request: Any, chunk_rows: int | None = None) -> Iterator[Decoded]:
        """The rows of a trace export request, ``chunk_rows`` (default CHUNK_ROWS) spans at a
        time (0: all at once), decoded as they are iterated; the last chunk carries every
        rejection."""
        chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
        rows = _SpanRows(self)
        for resource_spans in request.resource_spans:
            try:
                resource = self._resource(resource_spans.resource)
            except Rejected as exc:
                spans = sum(len(s.spans) for s in resource_spans.scope_spans)
                rows.reject(f"{spans} spans: {exc}", spans)
                continue
            for scope_spans in resource_spans.scope_spans:
                try:
                    scope = self._scope(scope_spans.scope)
                except Rejected as exc:
                    rows.reject(f"{len(scope_spans.spans)} spans: {exc}", len(scope_spans.spans))
                    continue
                context = (resource, resource_spans.schema_url or None, scope,
                           scope_spans.schema_url or None)
                for span in scope_spans.spans:
                    rows.add(span, context)
                    if chunk_rows and len(rows.keys) >= chunk_rows:
                        yield rows.take()
        yield rows.decoded()

    def logs(self, request: Any) -> Decoded:
        rows = _LogRows(self)
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                try:
                    context = (self._resource(resource_logs.resource),
                               resource_logs.schema_url or None,
                               self._scope(scope_logs.scope), scope_logs.schema_url or None)
                except Rejected as exc:
                    count = len(scope_logs.log_records)
                    rows.reject(f"{count} log records: {exc}", count)
                    continue
                origin = bytes(resource_logs.resource) + b"\0" + bytes(scope_logs.scope)
                for raw in scope_logs.log_records:
                    rows.add(raw, origin, context)
        return rows.decoded()


class _SpanRows:
    """Column lists for the spans of one request and their events."""

    def __init__(self, decoder: Decoder) -> None:
        self.d = decoder
        self.spans: dict[str, list[Any]] = {f.name: [] for f in SPAN_SCHEMA}
        self.events: dict[str, list[Any]] = {f.name: [] for f in EVENT_SCHEMA}
        self.keys: list[tuple[str, str]] = []
        self.seen: set[tuple[str, str]] = set()
        self.rejected: list[str] = []
        self.rejected_count = 0
        self.lo = _MAX_NS
        self.hi = 0
        self.foreign: set[str] = set()  # traces with spans another instrumentation made

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected.append(reason)
        self.rejected_count += count

    def add(self, span: Any, context: tuple[Any, ...]) -> None:
        try:
            row, events = self._row(span)
        except Rejected as exc:
            self.reject(f"span {span.name!r}: {exc}")
            return
        key = (row[0], row[1])
        if key in self.seen:
            return  # the same span twice in one request: stored once
        self.seen.add(key)
        self.keys.append(key)
        (resource, resource_dropped), resource_schema, scope, scope_schema = context
        c = self.spans
        for name, value in zip(_ROW_COLUMNS, row, strict=True):
            c[name].append(value)
        c["resource"].append(resource)
        c["resource_dropped_attributes"].append(resource_dropped)
        c["resource_schema_url"].append(resource_schema)
        c["scope_name"].append(scope[0])
        c["scope_version"].append(scope[1])
        c["scope_attributes"].append(scope[2])
        c["scope_dropped_attributes"].append(scope[3])
        c["scope_schema_url"].append(scope_schema)
        c["writer_id"].append(self.d.writer_id)
        start = row[5]
        self.lo = min(self.lo, start)
        self.hi = max(self.hi, start)
        if events:
            ev = self.events
            for seq, (time_ns, name, attributes, dropped) in enumerate(events):
                ev["trace_id"].append(row[0])
                ev["span_id"].append(row[1])
                ev["seq"].append(seq)
                ev["name"].append(name)
                ev["time"].append(time_ns // 1000)
                ev["time_ns"].append(time_ns)
                ev["attributes"].append(attributes)
                ev["dropped_attributes"].append(dropped)

    def _row(self, s: Any) -> tuple[tuple[Any, ...], list[tuple[int, str, bytes, int]]]:
        d = self.d
        trace_id = _hex_id(s.trace_id, 16, "trace_id")
        span_id = _hex_id(s.span_id, 8, "span_id")
        parent = s.parent_span_id
        if parent and len(parent) != 8:
            raise Rejected(f"parent_span_id must be 8 bytes, got {len(parent)}")
        start = _ns(s.start_time_unix_nano, "start_time_unix_nano")
        end = _ns(s.end_time_unix_nano, "end_time_unix_nano") or start
        if end < start:
            raise Rejected("end_time_unix_nano is before start_time_unix_nano")
        status_code, status_message = d._status(s.status) if s.status else ("UNSET", None)
        kind = s.kind
        events = [
            (_ns(e.time_unix_nano, "event time_unix_nano"), d._name(e.name),
             d.attributes_json(e.attributes), e.dropped_attributes_count)
            for e in s.events
        ]
        if len(events) > 1:
            events = d.redact_streams(events)
        links = [self._link(raw) for raw in s.links] if s.links else None
        is_root = not parent or parent == _ZERO_SPAN_ID
        attributes, foreign = d.span_attributes(s, start, is_root, events)
        if foreign:
            self.foreign.add(trace_id)  # type: ignore[arg-type]
        row = (
            trace_id, span_id,
            None if is_root else parent.hex(),  # a zero parent means a root
            d._name(s.name), _KINDS[kind] if 0 <= kind < len(_KINDS) else "INTERNAL",
            start, end, start // 1000, end // 1000, (end - start) / 1e6,
            status_code, status_message, attributes,
            len(events), to_json(links) if links else None,
            s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count,
            s.trace_state or None, s.flags,
        )
        return row, events

    def _link(self, raw: bytes) -> dict[str, Any]:
        link = _parse(Span.Link, raw, "a link")
        out: dict[str, Any] = {
            "trace_id": _hex_id(link.trace_id, 16, "link trace_id"),
            "span_id": _hex_id(link.span_id, 8, "link span_id"),
            "attributes": self.d.redactor.value(key_values(link.attributes)),
        }
        if link.trace_state:
            out["trace_state"] = link.trace_state
        if link.flags:
            out["flags"] = link.flags
        if link.dropped_attributes_count:
            out["dropped_attributes"] = link.dropped_attributes_count
        return out

    def take(self) -> Decoded:
        """The rows so far, without the rejections; then start a new chunk (``seen`` stays:
        a span repeated later in the request is still dropped)."""
        chunk = Decoded(
            spans=_table(self.spans, SPAN_SCHEMA), events=_table(self.events, EVENT_SCHEMA),
            keys=self.keys, lo_ns=self.lo, hi_ns=self.hi, traces=self.foreign,
        )
        self.foreign = set()
        self.spans = {f.name: [] for f in SPAN_SCHEMA}
        self.events = {f.name: [] for f in EVENT_SCHEMA}
        self.keys, self.lo, self.hi = [], _MAX_NS, 0
        return chunk

    def decoded(self) -> Decoded:
        """The last chunk: the rows left and every rejection of the request."""
        if not self.keys:
            return Decoded(rejected=self.rejected, rejected_count=self.rejected_count)
        chunk = self.take()
        chunk.rejected, chunk.rejected_count = self.rejected, self.rejected_count
        return chunk


# Order of the per-span values _SpanRows._row returns.
_ROW_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns",
    "start_time", "end_time", "duration_ms", "status_code", "status_message", "attributes",
    "events_count", "links", "dropped_attributes", "dropped_events", "dropped_links",
    "trace_state", "flags",
)


class _LogRows:
    """Column lists for the log records of one request."""

    def __init__(self, decoder: Decoder) -> None:
        self.d = decoder
        self.columns: dict[str, list[Any]] = {f.name: [] for f in LOG_SCHEMA}
        self.keys: list[str] = []
        self.seen: set[str] = set()
        self.rejected: list[str] = []
        self.rejected_count = 0
        self.lo = _MAX_NS
        self.hi = 0

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected.append(reason)
        self.rejected_count += count

    def add(self, raw: bytes, origin: bytes, context: tuple[Any, ...]) -> None:
        try:
            row = self._row(raw)
        except Rejected as exc:
            self.reject(f"log record: {exc}")
            return
        # A retrying exporter re-sends the same bytes: the record's identity.
        record_id = hashlib.blake2b(origin + b"\0" + raw, digest_size=16).hexdigest()
        if record_id in self.seen:
            return
        self.seen.add(record_id)
        self.keys.append(record_id)
        (resource, _), resource_schema, scope, scope_schema = context
        c = self.columns
        for name, value in zip(_LOG_COLUMNS, row, strict=True):
            c[name].append(value)
        for name, value in (
            ("resource", resource), ("resource_schema_url", resource_schema),
            ("scope_name", scope[0]), ("scope_version", scope[1]),
            ("scope_attributes", scope[2]), ("scope_schema_url", scope_schema),
            ("record_id", record_id), ("writer_id", self.d.writer_id),
        ):
            c[name].append(value)
        time_ns = row[4]
        self.lo = min(self.lo, time_ns)
        self.hi = max(self.hi, time_ns)

    def _row(self, raw: bytes) -> tuple[Any, ...]:
        d = self.d
        record = _parse(LogRecord, raw, "the log record")
        attributes = d.redactor.value(key_values(record.attributes))
        event_name = record.event_name or attributes.get("event.name")
        time_ns = _ns(record.time_unix_nano, "time_unix_nano")
        observed = _ns(record.observed_time_unix_nano, "observed_time_unix_nano")
        time_ns = time_ns or observed
        body = d.redactor.value(any_value(record.body)) if record.HasField("body") else None
        return (
            _hex_id(record.trace_id, 16, "trace_id", optional=True),
            _hex_id(record.span_id, 8, "span_id", optional=True),
            d._name(event_name) if isinstance(event_name, str) else None,
            time_ns // 1000, time_ns, observed or None,
            record.severity_number, record.severity_text or None,
            to_json(body) if body is not None else None, to_json(attributes),
            record.flags, record.dropped_attributes_count,
        )

    def decoded(self) -> Decoded:
        if not self.keys:
            return Decoded(rejected=self.rejected, rejected_count=self.rejected_count)
        traces = {t for t in self.columns["trace_id"] if t is not None}
        return Decoded(logs=_table(self.columns, LOG_SCHEMA), keys=self.keys, lo_ns=self.lo,
                       hi_ns=self.hi, traces=traces, rejected=self.rejected, rejected_count=self.rejected_count)


_LOG_COLUMNS = (
    "trace_id", "span_id", "event_name", "time", "time_ns", "observed_time_ns",
    "severity_number", "severity_text", "body", "attributes", "flags", "dropped_attributes",
)


def _table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    return pa.table(columns, schema=schema)
