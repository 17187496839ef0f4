"""Wire-compatible "lite" views of the OTLP export requests, for fast decoding.

Materialising every ``KeyValue`` and ``AnyValue`` of a request as a Python protobuf object
costs about 2 µs each, which made decoding the collector's bottleneck. These messages have
the same field numbers and wire types as OTLP's, except that attribute lists, links, span
statuses, resources and scopes are declared ``bytes``: protobuf parses each one as its raw
encoded bytes (a length-delimited field is both), so the decoder can cache what it made of
bytes it has seen before (the same model name, run id, provider on every span) and decode
the rest with the real OTLP classes. Enums are declared ``int32`` (both are varints).
``tests/test_collector_decode.py`` checks every field against the real descriptors.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "shardscope.otlp_lite"
_SCALAR = {
    "bytes": _F.TYPE_BYTES, "string": _F.TYPE_STRING, "fixed32": _F.TYPE_FIXED32,
    "fixed64": _F.TYPE_FIXED64, "int32": _F.TYPE_INT32, "uint32": _F.TYPE_UINT32,
}

# message -> (field, number, type, repeated); a type that is not a scalar is a message here.
LITE_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "TraceRequest": [("resource_spans", 1, "ResourceSpans", True)],
    "ResourceSpans": [
        ("resource", 1, "bytes", False), ("scope_spans", 2, "ScopeSpans", True),
        ("schema_url", 3, "string", False),
    ],
    "ScopeSpans": [
        ("scope", 1, "bytes", False), ("spans", 2, "Span", True), ("schema_url", 3, "string", False),
    ],
    "Span": [
        ("trace_id", 1, "bytes", False), ("span_id", 2, "bytes", False),
        ("trace_state", 3, "string", False), ("parent_span_id", 4, "bytes", False),
        ("flags", 16, "fixed32", False), ("name", 5, "string", False), ("kind", 6, "int32", False),
        ("start_time_unix_nano", 7, "fixed64", False), ("end_time_unix_nano", 8, "fixed64", False),
        ("attributes", 9, "bytes", True), ("dropped_attributes_count", 10, "uint32", False),
        ("events", 11, "Event", True), ("dropped_events_count", 12, "uint32", False),
        ("links", 13, "bytes", True), ("dropped_links_count", 14, "uint32", False),
        ("status", 15, "bytes", False),
    ],
    "Event": [
        ("time_unix_nano", 1, "fixed64", False), ("name", 2, "string", False),
        ("attributes", 3, "bytes", True), ("dropped_attributes_count", 4, "uint32", False),
    ],
    "LogsRequest": [("resource_logs", 1, "ResourceLogs", True)],
    "ResourceLogs": [
        ("resource", 1, "bytes", False), ("scope_logs", 2, "ScopeLogs", True),
        ("schema_url", 3, "string", False),
    ],
    "ScopeLogs": [
        ("scope", 1, "bytes", False), ("log_records", 2, "bytes", True),
        ("schema_url", 3, "string", False),
    ],
}

# The real OTLP message each lite message stands for (checked field by field in the tests).
REAL_NAMES: dict[str, str] = {
    "TraceRequest": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
    "ResourceSpans": "opentelemetry.proto.trace.v1.ResourceSpans",
    "ScopeSpans": "opentelemetry.proto.trace.v1.ScopeSpans",
    "Span": "opentelemetry.proto.trace.v1.Span",
    "Event": "opentelemetry.proto.trace.v1.Span.Event",
    "LogsRequest": "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest",
    "ResourceLogs": "opentelemetry.proto.logs.v1.ResourceLogs",
    "ScopeLogs": "opentelemetry.proto.logs.v1.ScopeLogs",
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="shardscope/otlp_lite.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in LITE_MESSAGES.items():
        message = proto.message_type.add(name=name)
        for field, number, kind, repeated in fields:
            label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if kind in _SCALAR:
                message.field.add(name=field, number=number, type=_SCALAR[kind], label=label)
            else:
                message.field.add(name=field, number=number, type=_F.TYPE_MESSAGE, label=label,
                                  type_name=f".{_PACKAGE}.{kind}")
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def lite_class(name: str) -> Any:
    """The generated message class of a lite message (see LITE_MESSAGES)."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


LiteTraceRequest = lite_class("TraceRequest")
LiteLogsRequest = lite_class("LogsRequest")
