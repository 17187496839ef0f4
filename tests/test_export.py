"""`shardscope export` (issue 12): a Parquet export re-read by DuckDB gives the same rows as the
views and tables; an OTLP JSON Lines export replayed into a fresh store through a real
`shardscope collect` process gives the same rows in every view; filters narrow by run, suite
and model; bad options are one-line errors. The store is the UI fixture: a real run (real SDK,
real DuckDB) with tool calls, retries, errors and streamed tokens with logprobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shardscope.commands.export import ExportOptions, export_command
from shardscope.tracer.otlp_file import SPANS_PER_LINE, read_requests
from shardscope.tracer.otlp_file import any_value as otlp_value
from shardscope.tracer.queries.export import RELATIONS, VIEWS, ExportFilter
from shardscope.tracer.store import Store
from tests.helpers.collect import rows
from tests.test_collector_cli import _start

EVENT_TABLES = ("span_events", "log_events")


def _sorted(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def _export(store: Path, out: Path, fmt: str = "parquet", **flt: tuple[str, ...]) -> None:
    code = export_command(Store(store), ExportOptions(fmt, out, ExportFilter(**flt),
                                                      progress=False))
    assert code == 0


def _parquet(out: Path, name: str) -> str:
    return f"read_parquet('{out}/{name}/*/*.parquet', hive_partitioning = true)"


def test_parquet_export_reads_back_as_the_views(fixture_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    _export(fixture_store, out)
    manifest = json.loads((out / "manifest.json").read_text())
    con = duckdb.connect(str(fixture_store), read_only=True)
    try:
        for name in RELATIONS:
            expected = manifest["relations"][name]["rows"]
            if name in EVENT_TABLES:  # a raw table plus its span's run_id (the partition)
                stored = _sorted(con, f"SELECT e.*, s.run_id FROM {name} e JOIN spans s "
                                      "USING (trace_id, span_id)" if name == "span_events"
                                 else f"SELECT *, NULL AS run_id FROM {name}")
            else:
                stored = _sorted(con, f"SELECT * FROM {name}")
            assert expected == len(stored), name
            if not stored:
                continue
            columns = [c[0] for c in con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()]
            if name in EVENT_TABLES:
                columns.append("run_id")
            back = _sorted(con, f"SELECT {', '.join(columns)} FROM {_parquet(out, name)}")
            assert back == stored, name
        assert {p.name for p in (out / "episodes").iterdir()} == {
            f"run_id={r[0]}" for r in con.execute("SELECT DISTINCT run_id FROM episodes").fetchall()}
        # types survive: JSON stays JSON, timestamps stay timestamps
        kinds = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                                 f"{_parquet(out, 'llm_calls')})").fetchall())
        assert kinds["input_messages"] == "JSON" and kinds["started_at"].startswith("TIMESTAMP")
    finally:
        con.close()
    assert manifest["relations"]["token_events"]["rows"] > 0  # the fixture streams tokens


def test_filters_narrow_every_relation(fixture_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpha"
    _export(fixture_store, out, models=("alpha",), suites=("toy",))
    con = duckdb.connect()
    models = {r[0] for r in con.execute(f"SELECT DISTINCT model FROM {_parquet(out, 'episodes')}").fetchall()}
    assert models == {"alpha"}
    for view in VIEWS[1:-1]:
        got = {r[0] for r in con.execute(
            f"SELECT DISTINCT model FROM {_parquet(out, view)}").fetchall()}
        assert got <= {"alpha"}, view
    episodes = con.execute(f"SELECT count(*) FROM {_parquet(out, 'episodes')}").fetchone()
    assert episodes == (12,)
    # the run-level spans come along, so the exported spans still make a `runs` row
    types = {r[0] for r in con.execute(f"SELECT DISTINCT span_type FROM {_parquet(out, 'spans')}").fetchall()}
    assert {"run", "run_start", "episode", "llm_call", "tool_call"} <= types
    assert con.execute(f"SELECT count(*) FROM {_parquet(out, 'runs')}").fetchone() == (1,)
    owned = con.execute(
        f"SELECT count(*) FROM {_parquet(out, 'spans')} WHERE episode_id IS NOT NULL AND "
        f"episode_id NOT IN (SELECT episode_id FROM {_parquet(out, 'episodes')})").fetchone()
    assert owned == (0,)


def test_any_value_keeps_each_type() -> None:
    value = {"s": "x", "b": True, "i": 2**40, "f": 0.5, "n": None, "l": [1, "a"],
             "m": {"k": [1.5]}, "bytes": {"$bytes": "AAE="}, "big": 2**70}
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
        "name": "x", "attributes": [{"key": "v", "value": otlp_value(value)}]}]}]}]}
    message = ExportTraceServiceRequest()
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"] = span["spanId"] = ""  # hex ids are the OTLP JSON rule, not protobuf's
    json_format.ParseDict(request, message)
    kv = message.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.kvlist_value
    got = {p.key: p.value.WhichOneof("value") for p in kv.values}
    assert got == {"s": "string_value", "b": "bool_value", "i": "int_value", "f": "double_value",
                   "n": None, "l": "array_value", "m": "kvlist_value", "bytes": "bytes_value",
                   "big": "string_value"}


def _strict(line: bytes) -> ExportTraceServiceRequest:
    """A line parsed as the OTLP JSON encoding demands: every field known, ids hex."""
    document = json.loads(line)
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                assert len(bytes.fromhex(span["traceId"])) == 16
                assert len(bytes.fromhex(span["spanId"])) == 8
                span["traceId"] = span["spanId"] = ""
                span.pop("parentSpanId", None)
                for link in span.get("links", []):
                    link["traceId"] = link["spanId"] = ""
    message = ExportTraceServiceRequest()
    json_format.ParseDict(document, message)  # raises on any unknown field
    return message


@pytest.mark.slow
def test_otlp_export_replayed_through_collect_gives_the_same_rows(
        fixture_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "otlp"
    _export(fixture_store, out, fmt="otlp-json")
    lines = list(read_requests(out / "traces.jsonl"))
    spans = sum(len(s.spans) for line in lines for r in _strict(line).resource_spans
                for s in r.scope_spans)
    assert spans == rows(fixture_store, "SELECT count(*) FROM spans")[0][0]
    assert all(sum(len(s["spans"]) for r in json.loads(line)["resourceSpans"]
                   for s in r["scopeSpans"]) <= SPANS_PER_LINE for line in lines)

    fresh = tmp_path / "replayed.duckdb"
    process, port, _ = _start(fresh, "--no-grpc")
    try:
        with httpx.Client(timeout=60) as client:
            for line in lines:
                response = client.post(f"http://127.0.0.1:{port}/v1/traces", content=line,
                                       headers={"Content-Type": "application/json"})
                assert response.status_code == 200, response.text
                assert response.json() == {}  # no partial_success: every span accepted
            again = client.post(f"http://127.0.0.1:{port}/v1/traces", content=lines[0],
                                headers={"Content-Type": "application/json"})
            assert again.status_code == 200  # a replay twice stores nothing twice
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    for view in VIEWS[:-1]:
        expected = sorted(rows(fixture_store, f"SELECT * FROM {view}"), key=repr)
        assert sorted(rows(fresh, f"SELECT * FROM {view}"), key=repr) == expected, view
    assert rows(fresh, "SELECT count(*) FROM spans") == rows(fixture_store, "SELECT count(*) FROM spans")
    runs = "SELECT run_id, name, status, planned_episodes, completed_episodes, successes FROM runs"
    assert rows(fresh, runs) == rows(fixture_store, runs)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardscope", "export", *args],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def test_bad_export_options_are_one_line_errors(fixture_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    first = _cli("--db", str(fixture_store), "--out", str(out), "--no-progress", "-m", "alpha")
    assert first.returncode == 0, first.stderr
    for args, fragment in (
        (("--out", str(out)), "already holds episodes"),
        (("--out", str(tmp_path / "y"), "--model", "nosuch"), "matches model 'nosuch'"),
        (("--out", str(tmp_path / "y"), "--run", "r1,r2"), "matches run_id 'r1', run_id 'r2'"),
        (("--out", str(tmp_path / "y"), "--format", "csv"), "'csv' is not one of"),
    ):
        result = _cli("--db", str(fixture_store), "--no-progress", *args)
        assert result.returncode != 0, args
        assert fragment in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "y" / "episodes").exists()
    again = _cli("--db", str(fixture_store), "--out", str(out), "--no-progress", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "manifest.json").read_text())["relations"]["episodes"]["rows"] == 36
