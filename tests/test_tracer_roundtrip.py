"""Every attribute type OpenTelemetry allows survives the trip into DuckDB and back."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

from shardscope.config.settings import Settings
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.encoding import from_json
from shardscope.tracer.setup import setup_tracing

BIG = "x" * 5_000_000 + "end"
VALUES = {
    "t.str": "plain",
    "t.unicode": "naïve café — 東京 🚀 \u0000 nul",
    "t.big_str": BIG,
    "t.empty": "",
    "t.true": True,
    "t.false": False,
    "t.int": 42,
    "t.neg": -(2**63),
    "t.max": 2**63 - 1,
    "t.float": 3.14159,
    "t.tiny": 5e-324,
    "t.huge": 1.7976931348623157e308,
    "t.neg_zero": -0.0,
    "t.nan": float("nan"),
    "t.inf": float("inf"),
    "t.ninf": float("-inf"),
    "t.bytes": b"\x00\xffbinary",
    "t.str_list": ("a", "é", ""),
    "t.bool_list": (True, False),
    "t.int_list": (1, -2, 3),
    "t.float_list": (1.5, float("nan"), float("inf")),
    "t.empty_list": (),
    "t.nested": {"a": [1, {"b": "c", "d": [True, None]}], "e": {"f": 1.25}},
    "t.dict_list": ({"x": 1}, {"y": "z"}),
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_every_attribute_type_round_trips(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with tracing.span("types", SpanType.SPAN, VALUES) as span:
        span.event("evt", {"e.nan": float("nan"), "e.list": (1, 2), "e.uni": "ü"})
    tracing.shutdown()
    con = duckdb.connect(str(db_path), read_only=True)
    attrs_json, event_json = con.execute(
        "SELECT s.attributes, e.attributes FROM spans s JOIN span_events e USING (span_id)"
    ).fetchone()
    sql_values = con.execute(
        "SELECT (attributes->>'$.\"t.nan\"')::DOUBLE, (attributes->>'$.\"t.ninf\"')::DOUBLE, "
        "attributes->>'$.\"t.unicode\"', length(attributes->>'$.\"t.big_str\"'), "
        "(attributes->>'$.\"t.max\"')::BIGINT FROM spans"
    ).fetchone()
    con.close()
    stored = from_json(attrs_json)
    for key, value in VALUES.items():
        assert key in stored, key
        assert _same(value, stored[key]), (key, value, stored[key])
    event = from_json(event_json)
    assert math.isnan(event["e.nan"]) and event["e.list"] == [1, 2] and event["e.uni"] == "ü"
    nan, ninf, uni, big_len, max_int = sql_values
    assert math.isnan(nan) and ninf == float("-inf")
    assert uni == VALUES["t.unicode"]
    assert big_len == len(BIG)
    assert max_int == 2**63 - 1


def test_lone_surrogates_are_replaced_not_fatal(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with tracing.span("bad-utf16", SpanType.SPAN, {"s": "a\ud800b", "ok": "😀"}):
        pass
    tracing.shutdown()
    con = duckdb.connect(str(db_path), read_only=True)
    s, ok = con.execute("SELECT attributes->>'$.s', attributes->>'$.ok' FROM spans").fetchone()
    con.close()
    assert s == "a\ufffdb" and ok == "😀"


def test_resource_and_scope_are_stored(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path, service_name="svc-x"), strict=True)
    with tracing.span("r"):
        pass
    tracing.shutdown()
    con = duckdb.connect(str(db_path), read_only=True)
    service, scope = con.execute(
        "SELECT resource->>'$.\"service.name\"', scope_name FROM spans"
    ).fetchone()
    con.close()
    assert service == "svc-x" and scope == "shardscope"
