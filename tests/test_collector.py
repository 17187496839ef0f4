"""`shardscope collect`: OTLP/HTTP in (protobuf, JSON, gzip), the store out; bad payloads
get clear errors and lose nothing already stored."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from shardscope.tracer.collector import Collector
from shardscope.tracer.otlp_http import serve
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store


@pytest.fixture
def collector(db_path: Path) -> Iterator[tuple[str, Collector]]:
    collector = Collector(Store(db_path))
    server = serve(collector, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", collector
    server.shutdown()
    server.server_close()
    collector.close()


def _message(response: httpx.Response) -> str:
    """The google.rpc.Status message of an error response, in either encoding."""
    if response.headers["content-type"] == "application/json":
        return response.json()["message"]
    return status_pb2.Status.FromString(response.content).message


def _count(db: Path) -> int:
    return int(read_frame(Store(db), "SELECT count(*) AS n FROM spans").n[0])


def test_any_otel_sdk_can_export_into_the_store(collector, db_path: Path) -> None:
    url, _ = collector
    provider = TracerProvider(resource=Resource.create({"service.name": "someone-elses-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    tracer = provider.get_tracer("external")
    with tracer.start_as_current_span("invoke_agent planner", attributes={
        "gen_ai.operation.name": "invoke_agent", "shardscope.span.type": "episode",
        "shardscope.episode.outcome": "success", "shardscope.model.id": "ext-model",
    }), tracer.start_as_current_span("chat ext", attributes={
        "gen_ai.usage.input_tokens": 12, "shardscope.span.type": "llm_call", "list": [1, 2],
    }) as span:
        span.add_event("shardscope.token", {"shardscope.token.text": "hi"})
    provider.shutdown()
    store = Store(db_path)
    rows = read_frame(store, "SELECT name, span_type, input_tokens, parent_span_id, resource FROM spans ORDER BY name")
    assert list(rows.name) == ["chat ext", "invoke_agent planner"]
    assert rows.input_tokens[0] == 12 and rows.parent_span_id.notna()[0]
    assert "someone-elses-agent" in rows.resource[0]
    assert read_frame(store, "SELECT outcome, model FROM episodes").values.tolist() == [["success", "ext-model"]]
    assert read_frame(store, "SELECT token FROM token_events").token[0] == "hi"


def _json_payload(trace_id: str = "0af7651916cd43dd8448eb211c80319c", span_id: str = "b7ad6b7169203331") -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "json-client"}}]},
        "scopeSpans": [{"scope": {"name": "j"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "json span", "kind": 3,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
            "attributes": [{"key": "n", "value": {"intValue": "7"}},
                           {"key": "d", "value": {"kvlistValue": {"values": [
                               {"key": "x", "value": {"boolValue": True}}]}}}],
            "status": {"code": 2, "message": "boom"}}]}]}]}


def test_otlp_json_and_gzip(collector, db_path: Path) -> None:
    url, _ = collector
    response = httpx.post(f"{url}/v1/traces", json=_json_payload())
    assert response.status_code == 200, response.text
    body = gzip.compress(json.dumps(_json_payload(span_id="b7ad6b7169203332")).encode())
    response = httpx.post(f"{url}/v1/traces", content=body,
                          headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200
    row = read_frame(Store(db_path), "SELECT * FROM spans ORDER BY span_id").iloc[0]
    assert (row["name"], row.kind, row.status_code, row.status_message, row.duration_ms) == (
        "json span", "CLIENT", "ERROR", "boom", 500.0)
    assert json.loads(row.attributes) == {"n": 7, "d": {"x": True}}


@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        (b"\xff\x00garbage", {"Content-Type": "application/x-protobuf"}, 400, "not an OTLP"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b'{"resourceSpans": 5}', {"Content-Type": "application/json"}, 400, "not an OTLP"),
        (b"x", {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
        (b"notgzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 400, "not gzip"),
    ],
)
def test_bad_payloads_are_refused_clearly_and_lose_nothing(
    collector, db_path: Path, body: bytes, headers: dict, status: int, fragment: str,
) -> None:
    url, _ = collector
    assert httpx.post(f"{url}/v1/traces", json=_json_payload()).status_code == 200
    response = httpx.post(f"{url}/v1/traces", content=body, headers=headers)
    assert response.status_code == status and fragment in _message(response)
    assert _count(db_path) == 1


def test_invalid_spans_are_rejected_one_by_one(collector, db_path: Path) -> None:
    url, _ = collector
    payload = _json_payload()
    good = payload["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    bad = dict(good, spanId="00", name="short id")
    backwards = dict(good, spanId="b7ad6b7169203339", name="backwards",
                     endTimeUnixNano="1600000000000000000")
    payload["resourceSpans"][0]["scopeSpans"][0]["spans"] += [bad, backwards]
    response = httpx.post(f"{url}/v1/traces", json=payload)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "span_id must be 8" in partial["errorMessage"] and "before start" in partial["errorMessage"]
    assert _count(db_path) == 1


def test_wrong_path_is_404(collector) -> None:
    url, _ = collector
    response = httpx.post(f"{url}/v1/metrics", json={})
    assert response.status_code == 404 and "/v1/traces" in response.json()["message"]
