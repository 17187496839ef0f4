"""Whatever a network peer sends, the collector answers with a result or an OTLP error, never
an exception of its own: mutated protobuf and JSON bodies, deterministic (seeded) and bounded."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shardscope.tracer.collector import Collector, ExportError
from shardscope.tracer.otlp_decode import _hex_ids_to_base64
from shardscope.tracer.store import Store
from tests.helpers.collect import TRACE_ID, span_json, traces_json

CASES = 1500


def _traces() -> dict[str, Any]:
    span = span_json(
        traceState="a=b", flags=1, parentSpanId="1111111111111111",
        attributes=[{"key": "s", "value": {"stringValue": "x"}},
                    {"key": "a", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"doubleValue": 2.5}]}}},
                    {"key": "k", "value": {"kvlistValue": {"values": [{"key": "b", "value": {"bytesValue": "AAE="}}]}}}],
        events=[{"timeUnixNano": "1700000000000000001", "name": "e",
                 "attributes": [{"key": "t", "value": {"boolValue": True}}]}],
        links=[{"traceId": TRACE_ID, "spanId": "2222222222222222"}],
        status={"code": 2, "message": "m"})
    return traces_json(span, scope={"name": "s", "version": "1",
                                    "attributes": [{"key": "x", "value": {"stringValue": "y"}}]})


def _logs() -> dict[str, Any]:
    return {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "f"}}]},
                              "scopeLogs": [{"scope": {"name": "s"}, "logRecords": [{
                                  "timeUnixNano": "1700000000000000001", "eventName": "gen_ai.choice",
                                  "traceId": TRACE_ID, "spanId": "b7ad6b7169203331", "severityNumber": 9,
                                  "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "hi"}}]}},
                                  "attributes": [{"key": "event.name", "value": {"stringValue": "x"}}]}]}]}]}


def _protobuf(document: dict[str, Any], message: Any) -> bytes:
    json_format.ParseDict(_hex_ids_to_base64(document), message)
    return message.SerializeToString()


def _mutate_bytes(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(data) + 1)
        if choice < 0.4 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice < 0.8:
            del data[position:position + rng.randint(1, 16)]
        else:
            data = data[:position]
    return bytes(data)


_ODD_VALUES: list[Any] = [None, True, 0, -1, 2**64, 1.5, float("1e308"), "", "zz", "0" * 40,
                          "ffffffffffffffffffffffffffffffff", [], {}, [{}], {"x": []}, "\ud800"]


def _mutate_json(rng: random.Random, node: Any) -> Any:
    if isinstance(node, dict) and node:
        key = rng.choice(list(node))
        if rng.random() < 0.3:
            return {**node, key: rng.choice(_ODD_VALUES)}
        return {**node, key: _mutate_json(rng, node[key])}
    if isinstance(node, list) and node:
        i = rng.randrange(len(node))
        return [*node[:i], _mutate_json(rng, node[i]), *node[i + 1:]]
    return rng.choice(_ODD_VALUES)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory):
    collector = Collector(Store(tmp_path_factory.mktemp("fuzz") / "store.duckdb"))
    yield collector
    collector.close()


@pytest.mark.parametrize("signal", ["traces", "logs"])
def test_mutated_bodies_never_raise_anything_but_otlp_errors(collector: Collector, signal: str) -> None:
    rng = random.Random(f"otlp-{signal}")
    document = _traces() if signal == "traces" else _logs()
    message = ExportTraceServiceRequest() if signal == "traces" else ExportLogsServiceRequest()
    body = _protobuf(document, message)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(CASES):
        if rng.random() < 0.5:
            payload, media = _mutate_bytes(rng, body), "protobuf"
        else:
            mutated = _mutate_json(rng, document)
            payload = json.dumps(mutated).encode("utf-8", "surrogatepass")
            media = "json"
        try:
            collector.export(signal, payload, media)
            outcomes["ok"] += 1
        except ExportError as exc:
            assert exc.http_status in (400, 503), exc
            outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"]  # both paths were exercised


@pytest.mark.parametrize("body", [
    b'{"resourceSpans": [{"\\ud800": 1}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\\udfff"}]}]}]}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"resourceSpans": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
])
def test_json_that_python_reads_but_protobuf_cannot_is_a_400(collector: Collector, body: bytes) -> None:
    with pytest.raises(ExportError) as error:
        collector.export("traces", body, "json")
    assert error.value.http_status == 400
