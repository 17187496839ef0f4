"""The collector's decoder: its wire-compatible lite messages match OTLP field by field, the
rows it stores equal what the in-process pipeline stores for the same SDK spans, and every
string it stores is redacted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest
from google.protobuf import descriptor as d
from google.protobuf import descriptor_pool
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from shardscope.tracer.otlp_decode import Decoder, parse_traces
from shardscope.tracer.otlp_lite import LITE_MESSAGES, REAL_NAMES, lite_class
from shardscope.tracer.pipeline import ReliableSpanProcessor
from shardscope.tracer.redact import Redactor
from shardscope.tracer.sinks import DuckDBSink
from shardscope.tracer.store import Store
from tests.helpers.collect import rows, running_collector, span_json, traces_json

# Wire types: a lite field may differ from OTLP's only where the encoding is the same.
_LENGTH_DELIMITED = {d.FieldDescriptor.TYPE_BYTES, d.FieldDescriptor.TYPE_MESSAGE,
                     d.FieldDescriptor.TYPE_STRING}
_VARINT = {d.FieldDescriptor.TYPE_INT32, d.FieldDescriptor.TYPE_ENUM}


@pytest.mark.parametrize("lite", sorted(LITE_MESSAGES))
def test_lite_messages_have_otlps_field_numbers_and_wire_types(lite: str) -> None:
    import opentelemetry.proto.collector.logs.v1.logs_service_pb2
    import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401

    real = descriptor_pool.Default().FindMessageTypeByName(REAL_NAMES[lite])
    mine = lite_class(lite).DESCRIPTOR
    for field in mine.fields:
        theirs = real.fields_by_name[field.name]
        assert field.number == theirs.number
        assert field.is_repeated == theirs.is_repeated
        if field.type != theirs.type:
            same_encoding = ({field.type, theirs.type} <= _LENGTH_DELIMITED
                             and d.FieldDescriptor.TYPE_STRING not in {field.type, theirs.type}
                             ) or {field.type, theirs.type} <= _VARINT
            assert same_encoding, f"{lite}.{field.name}: {field.type} vs {theirs.type}"
    # and no OTLP field is left out (a newer OTLP field would be kept as unknown bytes)
    assert {f.name for f in mine.fields} == set(real.fields_by_name)


ATTRIBUTES = {
    "s": "text ünïcode ✓", "b": True, "i": 2**62, "neg": -7, "f": 1.25, "nan": math.nan,
    "inf": -math.inf, "strs": ("a", "b"), "ints": (1, 2, 3), "floats": (0.5,), "bools": (True, False),
    "empty": "", "gen_ai.usage.input_tokens": 12, "gen_ai.request.model": "m-1",
    # shardscope's own span: spans of other instrumentations gain mapped attributes
    # (tests/test_collector_semantic.py)
    "shardscope.span.type": "span",
}


def _spans(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("lib", "9.9")
    with tracer.start_as_current_span("invoke_agent x", attributes=ATTRIBUTES) as parent:
        parent.add_event("shardscope.token", {"shardscope.token.text": "hé", "n": 3})
        with tracer.start_as_current_span("chat m") as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
            child.add_event("e2")


COMPARED = ("trace_id", "span_id", "parent_span_id", "name", "kind", "span_type", "start_time",
            "end_time", "start_ns", "end_ns", "duration_ms", "status_code", "status_message",
            "operation", "request_model", "input_tokens", "attributes", "events_count", "links",
            "resource", "scope_name", "scope_version", "dropped_attributes", "dropped_events",
            "dropped_links")


def test_collected_rows_equal_the_in_process_pipelines_rows(tmp_path: Path) -> None:
    resource = Resource.create({"service.name": "same"})
    memory = InMemorySpanExporter()  # the same finished spans go to both paths
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _spans(provider)
    provider.shutdown()
    spans = memory.get_finished_spans()
    direct = Store(tmp_path / "direct.duckdb")
    processor = ReliableSpanProcessor(DuckDBSink(direct), strict=True)
    for span in spans:
        processor.on_end(span)
    processor.shutdown()
    collected_db = tmp_path / "collected.duckdb"
    with running_collector(collected_db) as c:
        exporter = OTLPSpanExporter(endpoint=f"{c.url}/v1/traces")
        assert exporter.export(spans).name == "SUCCESS"
        exporter.shutdown()
    columns = ", ".join(COMPARED)
    query = f"SELECT {columns} FROM spans ORDER BY span_id"
    events = "SELECT trace_id, span_id, seq, name, time, time_ns, attributes FROM span_events ORDER BY span_id, seq"
    assert rows(collected_db, query) == rows(direct.path, query)
    assert rows(collected_db, events) == rows(direct.path, events)
    (attributes,) = rows(collected_db, "SELECT attributes FROM spans WHERE name = 'invoke_agent x'")[0]
    assert '"nan":NaN' in attributes and json.loads(attributes)["i"] == 2**62


def test_every_stored_string_is_redacted(db_path: Path) -> None:
    key = "sk-ant-" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3"
    attr = [{"key": "prompt", "value": {"stringValue": f"use {key} please"}},
            {"key": "nested", "value": {"kvlistValue": {"values": [
                {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": key}]}}}]}}}]
    span = span_json(attributes=attr, status={"code": 2, "message": f"bad key {key}"},
                     events=[{"name": "exception", "timeUnixNano": "1700000000000000001",
                              "attributes": attr}])
    payload = traces_json(span, resource={"attributes": attr}, scope={"name": "s", "attributes": attr})
    with running_collector(db_path) as c:
        assert httpx.post(f"{c.url}/v1/traces", json=payload).status_code == 200
    stored = rows(db_path, "SELECT attributes, status_message, resource, scope_attributes FROM spans")
    stored += rows(db_path, "SELECT attributes, name, name, name FROM span_events")
    text = json.dumps(stored)
    assert key not in text and text.count("[REDACTED]") == 9


def test_the_token_itself_is_redacted(db_path: Path) -> None:
    token = "collect-token-abcdefgh"
    payload = traces_json(span_json(attributes=[{"key": "t", "value": {"stringValue": token}}]))
    with running_collector(db_path, token=token) as c:
        response = httpx.post(f"{c.url}/v1/traces", json=payload,
                              headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200
    assert rows(db_path, "SELECT attributes FROM spans") == [('{"t":"[REDACTED]"}',)]


def test_the_attribute_cache_never_mixes_values_up() -> None:
    decoder = Decoder(Redactor({}), "w")
    spans = [span_json(f"{i + 1:016x}", attributes=[
        {"key": "k", "value": {"intValue": str(i % 7)}},
        {"key": "same", "value": {"stringValue": "x"}}]) for i in range(200)]
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from shardscope.tracer.otlp_decode import _hex_ids_to_base64

    request = ExportTraceServiceRequest()
    json_format.ParseDict(_hex_ids_to_base64(traces_json(*spans)), request)
    body = request.SerializeToString()
    import shardscope.tracer.otlp_decode as module

    for limit in (65_536, 3):  # with a cache that is cleared all the time, too
        module._CACHE_ENTRIES, saved = limit, module._CACHE_ENTRIES
        try:
            decoded = decoder.traces(parse_traces(body, "protobuf"))
        finally:
            module._CACHE_ENTRIES = saved
        values = [json.loads(a) for a in decoded.spans["attributes"].to_pylist()]
        assert values == [{"k": i % 7, "same": "x"} for i in range(200)]


def test_known_span_ids_find_stored_ids_and_catch_up_with_other_writers(tmp_path: Path) -> None:
    import duckdb

    import shardscope.tracer.otlp_dedupe as dedupe

    con = duckdb.connect(str(tmp_path / "k.duckdb"))
    con.execute("CREATE TABLE spans (span_id VARCHAR)")
    con.execute("INSERT INTO spans VALUES ('00000000000000aa'), ('not hex'), (NULL)")
    known = dedupe.KnownSpanIds()
    known.catch_up(con)
    assert known.hits([0xAA, 0xBB]) == [0]
    con.execute("INSERT INTO spans VALUES ('00000000000000bb')")  # another writer, meanwhile
    known.catch_up(con)
    assert known.hits([0xCC, 0xBB, 0xAA]) == [1, 2]
    saved, dedupe.FOLD_AT = dedupe.FOLD_AT, 2
    try:
        known.add([0xCC])
        assert known.hits([0xCC]) == [0]  # recent, not yet folded
        known.add([0xDD, 0xFFFFFFFFFFFFFFFF])  # folded into the sorted array
        assert known.hits([0xDD, 0xEE, 0xFFFFFFFFFFFFFFFF, 0xCC]) == [0, 2, 3]
    finally:
        dedupe.FOLD_AT = saved
    con.close()
