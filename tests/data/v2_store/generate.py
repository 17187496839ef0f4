"""Write this folder's fixture: a schema-v2 store as written by shardscope at commit d5f9d97
(the last schema-v2 main), dumped as JSON Lines, with what its views returned then.

Run once against that commit's code (not this tree's): a copy of it on PYTHONPATH first, e.g.

    git archive d5f9d97 | tar -x -C /tmp/v2 && (link tracer scaffolds ui config into
    /tmp/v2/shardscope) && PYTHONPATH=/tmp/v2 python tests/data/v2_store/generate.py

The store holds the UI fixture matrix (finished, failed, errored and retried episodes, token
streams), a small dependence matrix (shard ablations and their baselines) and one foreign trace
(GenAI-convention spans sent through the real collector in one request per span, children
first). tests/test_schema_migration.py loads the rows into a v2 schema, lets today's code
migrate it and compares every view with views.jsonl.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
LONG = 160
TABLES = {"spans": "trace_id, span_id", "span_events": "trace_id, span_id, seq",
          "log_events": "record_id", "writer_stats": "writer_id, recorded_at"}


def _foreign(db: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from tests.helpers.collect import running_collector
    from tests.test_collector_semantic import _recorded

    spans = _recorded()
    with running_collector(db) as running:
        exporter = OTLPSpanExporter(endpoint=f"{running.url}/v1/traces")
        for span in spans:  # children first, as the SDK ends them
            assert exporter.export([span]).name == "SUCCESS"
        exporter.shutdown()


def shorten(value: object) -> object:
    """A long text as its digest (the expected views stay small; the test shortens alike)."""
    if isinstance(value, str) and len(value) > LONG:
        return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:24]
    return value


def rows_of(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Rows of ``sql`` with JSON and timestamps as text (what the fixture files hold)."""
    names = [d[0] for d in con.execute(f"SELECT * FROM ({sql}) LIMIT 0").description]
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {sql})").fetchall())
    select = ", ".join(f"CAST({n} AS VARCHAR) AS {n}" if types[n] == "JSON" or "TIMESTAMP" in types[n]
                       else n for n in names)
    return names, con.execute(f"SELECT {select} FROM ({sql})").fetchall()


def _dump(con: duckdb.DuckDBPyConnection, sql: str, out: Path, short: bool = False) -> int:
    names, rows = rows_of(con, sql)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            values = [shorten(v) for v in row] if short else list(row)
            f.write(json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False,
                               default=str) + "\n")
    return len(rows)


def main() -> None:
    from shardscope.tracer.schema import SCHEMA_VERSION, VIEWS
    from tests import analysis_fixtures as af
    from tests.ui_fixtures import build_store

    assert SCHEMA_VERSION == 2, "run against the schema-v2 code (see the docstring)"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "v2.duckdb"
        build_store(db)
        # a small ablation run: 2 tasks, 1 seed, both ablation modes, and its baselines
        af._build(db, {"uses-a": af._reader("uses-a", "a", 3), "uses-b": af._reader("uses-b", "b", 2)},
                  dataclasses.replace(af.DEPENDENCE_SPEC, seeds=1), 2)
        _foreign(db)
        con = duckdb.connect(str(db), read_only=True)
        for table, order in TABLES.items():
            n = _dump(con, f"SELECT * FROM {table} ORDER BY {order}", HERE / f"{table}.jsonl")
            print(f"{table}: {n} rows")
        expected = HERE / "views"
        expected.mkdir(exist_ok=True)
        for view in VIEWS:
            if view == "runs":  # its status depends on the clock; its columns are checked
                sql = "SELECT * EXCLUDE (status, writer_heard_at) FROM runs ORDER BY ALL"
            else:
                sql = f"SELECT * FROM {view} ORDER BY ALL"
            n = _dump(con, sql, expected / f"{view}.jsonl", short=True)
            print(f"view {view}: {n} rows")
        con.close()


if __name__ == "__main__":
    main()
