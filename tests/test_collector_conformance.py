"""`shardscope collect` against the OTLP/HTTP specification, one test per point: the status
code, the body (google.rpc.Status in the request's encoding), and that nothing stored is lost
or doubled."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from shardscope.tracer.store import Store
from tests.helpers.collect import (
    TRACE_ID,
    rows,
    running_collector,
    span_count,
    span_json,
    status_message,
    traces_json,
)
from tests.helpers.wait import wait_until

MIB = 1024 * 1024


def _protobuf(payload: dict) -> bytes:
    """An OTLP JSON payload as the equivalent protobuf body."""
    from google.protobuf import json_format

    from shardscope.tracer.otlp_decode import _hex_ids_to_base64

    request = ExportTraceServiceRequest()
    json_format.ParseDict(_hex_ids_to_base64(payload), request)
    return request.SerializeToString()


def _post(url: str, body: bytes, media: str = "application/x-protobuf", **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/traces", content=body, headers={"Content-Type": media, **headers})


def _raw(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Send raw bytes, read the response until the server closes or a full response arrives."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return _read_response(sock)


def _read_response(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_unknown_json_fields_are_ignored(db_path: Path) -> None:
    payload = traces_json(span_json(futureField={"x": 1}, name="with unknown"),
                          newScopeSpansField=3)
    payload["somethingFromOTLP2"] = [1, 2]
    payload["resourceSpans"][0]["resource"]["entityRefs2"] = "x"
    with running_collector(db_path) as c:
        response = httpx.post(f"{c.url}/v1/traces", json=payload)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert rows(db_path, "SELECT name, input_tokens FROM spans") == [("with unknown", 7)]


@pytest.mark.parametrize("media", ["application/x-protobuf", "application/json"])
def test_errors_are_google_rpc_status_in_the_request_encoding(db_path: Path, media: str) -> None:
    with running_collector(db_path) as c:
        response = _post(c.url, b"\x0a\xff\xff\xff", media)
    assert response.status_code == 400
    assert response.headers["content-type"] == media
    if media == "application/json":
        status = response.json()
        assert status["code"] == code_pb2.INVALID_ARGUMENT and "JSON" in status["message"]
    else:
        status = status_pb2.Status.FromString(response.content)
        assert status.code == code_pb2.INVALID_ARGUMENT and "protobuf" in status.message
    assert span_count(db_path) == 0


def test_success_answers_in_the_request_encoding_without_partial_success(db_path: Path) -> None:
    with running_collector(db_path) as c:
        response = _post(c.url, _protobuf(traces_json()))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")


def test_chunked_bodies_are_read(db_path: Path) -> None:
    spans = [span_json(f"{i + 1:016x}", name=f"chunked {i}") for i in range(50)]
    body = _protobuf(traces_json(*spans))
    pieces = [body[i:i + 777] for i in range(0, len(body), 777)]
    with running_collector(db_path) as c:
        connection = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        connection.request("POST", "/v1/traces", body=iter(pieces), encode_chunked=True,
                           headers={"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        response.read()
        # ... and gzip inside chunks
        zipped = gzip.compress(_protobuf(traces_json(span_json("00000000000000ff"))))
        connection.request("POST", "/v1/traces", body=iter([zipped[:10], zipped[10:]]),
                           encode_chunked=True, headers={"Content-Type": "application/x-protobuf",
                                                         "Content-Encoding": "gzip"})
        second = connection.getresponse()
        second.read()
        connection.close()
    assert response.status == 200 and second.status == 200
    assert span_count(db_path) == 51


def test_a_malformed_chunked_body_is_400(db_path: Path) -> None:
    with running_collector(db_path) as c:
        reply = _raw(c.port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert reply.startswith(b"HTTP/1.1 400") and b"malformed chunk size" in reply


def test_the_size_limit_applies_after_decompression_with_bounded_memory(db_path: Path) -> None:
    bomb = gzip.compress(b"\0" * (100 * MIB), compresslevel=9)  # ~100 KB inflating to 100 MiB
    assert len(bomb) < 200_000
    with running_collector(db_path, max_body_bytes=4 * MIB) as c:
        tracemalloc.start()
        response = _post(c.url, bomb, **{"Content-Encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert _post(c.url, _protobuf(traces_json())).status_code == 200  # still serving
    assert response.status_code == 413 and "decompressed body exceeds" in status_message(response)
    assert peak < 16 * MIB, f"peak Python memory {peak / MIB:.1f} MiB for a 4 MiB limit"
    assert span_count(db_path) == 1


def test_a_body_over_the_limit_is_413_before_it_is_read(db_path: Path) -> None:
    with running_collector(db_path, max_body_bytes=MIB) as c:
        reply = _raw(c.port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/x-protobuf\r\nContent-Length: 999999999\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413") and b"Connection: close" in reply


@pytest.mark.parametrize("length", [b"abc", b"-5", b"12, 13", b"1e3"])
def test_a_bad_content_length_is_400_and_the_collector_keeps_serving(db_path: Path, length: bytes) -> None:
    with running_collector(db_path) as c:
        reply = _raw(c.port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/x-protobuf\r\nContent-Length: " + length + b"\r\n\r\n")
        good = _post(c.url, _protobuf(traces_json()))
    assert reply.startswith(b"HTTP/1.1 400") and b"bad Content-Length" in reply
    status = status_pb2.Status.FromString(reply.partition(b"\r\n\r\n")[2])
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert good.status_code == 200 and span_count(db_path) == 1


def test_a_stalled_body_times_out_with_408_and_others_are_served(db_path: Path) -> None:
    body = _protobuf(traces_json())
    with running_collector(db_path, read_timeout_s=0.5) as c:
        with socket.create_connection(("127.0.0.1", c.port), timeout=30) as stalled:
            stalled.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                            b"x-protobuf\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                            + body[:10])
            good = _post(c.url, body)  # served meanwhile, on another connection
            reply = _read_response(stalled)
            assert stalled.recv(10) == b""  # then closed
    assert good.status_code == 200
    assert reply.startswith(b"HTTP/1.1 408") and b"stopped arriving" in reply
    assert span_count(db_path) == 1


def test_a_request_trickling_in_is_cut_off(db_path: Path) -> None:
    """A client that sends a byte every so often (never idle for a whole read timeout) is
    closed once its request has taken request_timeout_s."""
    with running_collector(db_path, read_timeout_s=5, request_timeout_s=1.0) as c:
        with socket.create_connection(("127.0.0.1", c.port), timeout=30) as slow:
            slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
            deadline = time.monotonic() + 120  # a server that never cuts it off, not a speed bound
            closed = False
            while time.monotonic() < deadline and not closed:
                try:
                    slow.sendall(b"X")
                    slow.settimeout(0.2)
                    closed = slow.recv(1) == b""
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
    assert closed


def test_keep_alive_reuses_one_connection(db_path: Path) -> None:
    with running_collector(db_path) as c:
        connection = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        sockets, statuses = [], []
        for i in range(3):
            connection.request("POST", "/v1/traces", _protobuf(traces_json(span_json(f"{i + 1:016x}"))),
                               {"Content-Type": "application/x-protobuf"})
            response = connection.getresponse()
            response.read()
            statuses.append((response.status, response.getheader("Connection")))
            sockets.append(connection.sock)
        connection.close()
    assert statuses == [(200, None)] * 3
    assert sockets[0] is not None and all(s is sockets[0] for s in sockets)
    assert span_count(db_path) == 3


@pytest.mark.parametrize("encoding", ["br", "zstd", "deflate", "gzip, br"])
def test_an_unsupported_content_encoding_is_415(db_path: Path, encoding: str) -> None:
    with running_collector(db_path) as c:
        response = _post(c.url, b"whatever", **{"Content-Encoding": encoding})
    assert response.status_code == 415 and "Content-Encoding" in status_message(response)
    assert span_count(db_path) == 0


def test_a_span_re_sent_is_stored_once_across_requests_and_restarts(db_path: Path) -> None:
    body = _protobuf(traces_json(span_json("00000000000000a1"), span_json("00000000000000a2")))
    twice_in_one = _protobuf(traces_json(span_json("00000000000000a3"), span_json("00000000000000a3")))
    with running_collector(db_path) as c:
        assert _post(c.url, body).status_code == 200
        assert _post(c.url, body).status_code == 200  # a retry after a lost ack
        assert _post(c.url, twice_in_one).status_code == 200
        threads = [threading.Thread(target=_post, args=(c.url, body)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with running_collector(db_path) as c:  # a new collector process on the same store
        assert _post(c.url, body).status_code == 200
        assert c.collector.duplicates == 2
    assert rows(db_path, "SELECT count(*), sum(input_tokens) FROM spans") == [(3, 21)]


def test_span_context_and_envelope_fields_are_kept(db_path: Path) -> None:
    span = span_json(traceState="vendor=a,other=b", flags=769, droppedAttributesCount=3,
                     droppedEventsCount=4, droppedLinksCount=5,
                     events=[{"timeUnixNano": "1700000000100000000", "name": "e",
                              "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
                              "droppedAttributesCount": 2}],
                     links=[{"traceId": TRACE_ID, "spanId": "1111111111111111",
                             "traceState": "l=1", "flags": 1, "droppedAttributesCount": 1}])
    payload = traces_json(
        span, resource={"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}],
                        "droppedAttributesCount": 6},
        scope={"name": "lib", "version": "1.2", "droppedAttributesCount": 7,
               "attributes": [{"key": "scope.attr", "value": {"boolValue": True}}]},
        schemaUrl="https://opentelemetry.io/schemas/1.30.0")
    payload["resourceSpans"][0]["schemaUrl"] = "https://opentelemetry.io/schemas/1.29.0"
    with running_collector(db_path) as c:
        assert httpx.post(f"{c.url}/v1/traces", json=payload).status_code == 200
    (row,) = rows(db_path, "SELECT trace_state, flags, dropped_attributes, dropped_events, "
                  "dropped_links, resource_schema_url, resource_dropped_attributes, scope_name, "
                  "scope_version, scope_schema_url, scope_attributes, scope_dropped_attributes, "
                  "links, events_count FROM spans")
    assert row[:10] == ("vendor=a,other=b", 769, 3, 4, 5, "https://opentelemetry.io/schemas/1.29.0",
                        6, "lib", "1.2", "https://opentelemetry.io/schemas/1.30.0")
    assert json.loads(row[10]) == {"scope.attr": True} and row[11] == 7
    assert json.loads(row[12]) == [{"trace_id": TRACE_ID, "span_id": "1111111111111111",
                                    "attributes": {}, "trace_state": "l=1", "flags": 1,
                                    "dropped_attributes": 1}]
    assert row[13] == 1
    assert rows(db_path, "SELECT name, attributes, dropped_attributes FROM span_events") == [
        ("e", '{"k":"v"}', 2)]


@pytest.mark.parametrize("parent", ["", "0000000000000000", None])
def test_an_empty_or_zero_parent_span_id_means_root(db_path: Path, parent: str | None) -> None:
    extra = {} if parent is None else {"parentSpanId": parent}
    with running_collector(db_path) as c:
        assert httpx.post(f"{c.url}/v1/traces", json=traces_json(span_json(**extra))).status_code == 200
        body = _protobuf(traces_json(span_json("00000000000000b1", **extra)))
        assert _post(c.url, body).status_code == 200
    assert rows(db_path, "SELECT count(*) FROM spans WHERE parent_span_id IS NULL") == [(2,)]


def test_a_busy_store_gets_503_with_retry_after_and_the_retry_lands_once(db_path: Path) -> None:
    body = _protobuf(traces_json(span_json("00000000000000c1")))
    with running_collector(db_path, queue_wait_s=0.2, ack_timeout_s=0.5) as c:
        c.collector.writer.sink.idle()
        holder = Store(db_path)
        with holder.lock.exclusive():  # another shardscope process is writing
            busy = _post(c.url, body)
        deadline = time.monotonic() + 300
        retried = _post(c.url, body)
        while retried.status_code != 200 and time.monotonic() < deadline:
            retried = _post(c.url, body)
    assert busy.status_code == 503 and busy.headers["retry-after"].isdigit()
    status = status_pb2.Status.FromString(busy.content)
    assert status.code == code_pb2.UNAVAILABLE and "busy" in status.message
    assert retried.status_code == 200
    assert span_count(db_path) == 1


def test_a_full_queue_answers_retry_later_instead_of_growing(db_path: Path) -> None:
    spans = [span_json(f"{i + 1:016x}") for i in range(30)]
    with running_collector(db_path, max_pending_rows=40, queue_wait_s=0.2, ack_timeout_s=20) as c:
        c.collector.writer.sink.idle()
        results: list[int] = []
        with Store(db_path).lock.exclusive():
            first = threading.Thread(target=lambda: results.append(
                _post(c.url, _protobuf(traces_json(*spans))).status_code))
            first.start()
            while c.collector.writer._pending_rows < 30:
                time.sleep(0.01)
            second = _post(c.url, _protobuf(traces_json(span_json("00000000000000d1"),
                                                         span_json("00000000000000d2"),
                                                         *[span_json(f"{i + 100:016x}") for i in range(10)])))
        first.join()
    assert second.status_code == 503 and "waiting to be written" in status_message(second)
    assert results == [200] and span_count(db_path) == 30


def test_the_connection_limit_answers_503(db_path: Path) -> None:
    with running_collector(db_path, max_connections=2) as c:
        held = [socket.create_connection(("127.0.0.1", c.port), timeout=30) for _ in range(2)]
        wait_until(lambda: c.http._active == 2, "the collector to take both connections")
        reply = _raw(c.port, b"")
        for sock in held:
            sock.close()
    assert reply.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in reply


def test_other_paths_and_methods(db_path: Path) -> None:
    with running_collector(db_path) as c:
        missing = httpx.post(f"{c.url}/v1/metrics", content=b"", headers={"Content-Type": "application/json"})
        get = httpx.get(f"{c.url}/v1/traces")
    assert missing.status_code == 404 and "/v1/logs" in status_message(missing)
    assert get.status_code == 405 and get.headers["allow"] == "POST"


def test_readers_get_the_store_while_the_collector_holds_it(db_path: Path, monkeypatch) -> None:
    """Between requests the collector keeps the store open, but lets a waiting reader in at
    once (it would otherwise wait out the linger, here made endless)."""
    import shardscope.tracer.otlp_ingest as ingest

    monkeypatch.setattr(ingest, "LINGER_S", 10_000.0)
    monkeypatch.setattr(ingest, "MAX_HOLD_S", 10_000.0)
    with running_collector(db_path) as c:
        for i in range(3):
            assert _post(c.url, _protobuf(traces_json(span_json(f"{i + 1:016x}")))).status_code == 200
            assert not c.collector.writer.sink.released  # held for the next request
            with Store(db_path, lock_timeout=30).reader() as con:  # would give up after 30 s
                assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == i + 1


def test_a_large_request_is_stored_whole_and_once_across_its_chunks(db_path: Path, monkeypatch) -> None:
    """A big request is handed to the store in chunks (CHUNK_ROWS spans) while it is decoded:
    duplicates across chunks, and across concurrent requests sharing a transaction, still
    count once, and the rejections of every chunk are reported."""
    import shardscope.tracer.otlp_decode as decode

    monkeypatch.setattr(decode, "CHUNK_ROWS", 64)
    CHUNK_ROWS = 64

    spans = [span_json(f"{i + 1:016x}", name=f"s{i}") for i in range(3 * CHUNK_ROWS)]
    spans.insert(2 * CHUNK_ROWS + 5, span_json("0000000000000001", name="repeat"))
    spans.insert(10, span_json("00", name="bad"))
    body = _protobuf(traces_json(*spans))
    with running_collector(db_path) as c:
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda: statuses.append(_post(c.url, body).status_code))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last = ExportTraceServiceResponse.FromString(_post(c.url, body).content)
    assert statuses == [200, 200, 200]
    assert last.partial_success.rejected_spans == 1
    assert rows(db_path, "SELECT count(*), count(DISTINCT span_id), sum(input_tokens) FROM spans") == [
        (3 * CHUNK_ROWS, 3 * CHUNK_ROWS, 7 * 3 * CHUNK_ROWS)]
    assert rows(db_path, "SELECT name FROM spans WHERE span_id = '0000000000000001'") == [("s0",)]
