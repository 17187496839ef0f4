"""Schema v3: a store written by the schema-v2 code (rebuilt from the committed rows in
tests/data/v2_store/, see its generate.py) migrates in place, with progress, and every view
then returns what the v2 views returned; typed rows derived batch by batch, however the spans
are split into batches, give the same views."""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from shardscope.tracer.schema import SCHEMA_VERSION, TABLES_V1, TABLES_V2, VIEWS
from shardscope.tracer.store import Store
from shardscope.tracer.typed import TYPED_TABLES, insert_typed, typed_tables

DATA = Path(__file__).parent / "data" / "v2_store"
TABLES = ("spans", "span_events", "log_events", "writer_stats")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("v2_store_generate", DATA / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Insert the fixture's rows of ``table`` (JSON and timestamps as text: cast back)."""
    path = DATA / f"{table}.jsonl"
    if not path.stat().st_size:
        return 0
    types = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
    columns = ", ".join(f"'{n}': '{'VARCHAR' if t == 'JSON' else t}'" for n, t in types)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_json('{path}', "
                f"format = 'newline_delimited', columns = {{{columns}}})")
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def build_v2_store(path: Path) -> int:
    """A schema-v2 store as the v2 code left it: its tables, version and rows; the spans count."""
    con = duckdb.connect(str(path))
    con.execute(TABLES_V1)
    con.execute(TABLES_V2)
    con.execute("INSERT INTO shardscope_meta VALUES ('schema_version', '2'), "
                "('written_by', '0.1.0 (d5f9d97)'), ('views_hash', 'v2')")
    counts = {table: _load_rows(con, table) for table in TABLES}
    con.close()
    return counts["spans"]


def _canonical(row: dict[str, Any]) -> str:
    def value(v: Any) -> Any:
        return float(f"{v:.10g}") if isinstance(v, float) and math.isfinite(v) else v

    return json.dumps({k: value(v) for k, v in row.items()}, sort_keys=True, default=str)


def _view_rows(con: duckdb.DuckDBPyConnection, view: str) -> tuple[list[str], list[str]]:
    gen = _generator()
    sql = ("SELECT * EXCLUDE (status, writer_heard_at) FROM runs ORDER BY ALL" if view == "runs"
           else f"SELECT * FROM {view} ORDER BY ALL")
    names, rows = gen.rows_of(con, sql)
    # Through JSON as the fixture was: the same value types (ints, floats, text).
    dicts = [json.loads(json.dumps(dict(zip(names, [gen.shorten(v) for v in row], strict=True)),
                                   ensure_ascii=False, default=str)) for row in rows]
    return names, sorted(_canonical(d) for d in dicts)


def _expected(view: str) -> tuple[list[str], list[str]]:
    lines = (DATA / "views" / f"{view}.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    return list(rows[0]), sorted(_canonical(r) for r in rows)


def _assert_views_as_in_v2(con: duckdb.DuckDBPyConnection) -> None:
    for view in VIEWS:
        names, rows = _view_rows(con, view)
        expected_names, expected_rows = _expected(view)
        assert names == expected_names, view  # the documented columns, in their order
        missing = sorted(set(expected_rows) - set(rows))[:2]
        extra = sorted(set(rows) - set(expected_rows))[:2]
        assert rows == expected_rows, f"{view}: missing {missing}, unexpected {extra}"


def test_a_store_written_by_schema_v2_migrates_in_place_and_its_views_are_unchanged(
        tmp_path: Path) -> None:
    db = tmp_path / "v2.duckdb"
    spans = build_v2_store(db)
    reported: list[tuple[int, int]] = []
    store = Store(db, progress=lambda done, total: reported.append((done, total)))
    store.upgrade()  # what the first `shardscope query` / UI / run on the old store does
    assert reported[0] == (0, spans) and reported[-1] == (spans, spans) and spans > 200
    with store.reader() as con:
        version = con.execute("SELECT value FROM shardscope_meta WHERE key = 'schema_version'"
                              ).fetchone()
        assert version == (str(SCHEMA_VERSION),) and SCHEMA_VERSION == 3
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (spans,)  # nothing lost
        typed = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TYPED_TABLES}
        raw = dict(con.execute("SELECT span_type, count(*) FROM spans GROUP BY ALL").fetchall())
        _assert_views_as_in_v2(con)
    assert typed["typed_episodes"] == raw["episode"] + raw.get("abandoned_episode", 0)
    assert typed["typed_llm_calls"] == raw["llm_call"] and typed["typed_steps"] == raw["step"]
    # a second open finds it current: no second back-fill
    reported.clear()
    Store(db, progress=lambda done, total: reported.append((done, total))).upgrade()
    assert reported == []


def test_the_views_read_typed_rows_not_the_span_json(tmp_path: Path) -> None:
    db = tmp_path / "v2.duckdb"
    build_v2_store(db)
    Store(db).upgrade()
    con = duckdb.connect(str(db))
    con.execute("UPDATE spans SET attributes = '{}'")  # the raw JSON gone: the views stand
    _assert_views_as_in_v2(con)
    con.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_split_of_the_spans_into_batches_gives_the_same_views(tmp_path: Path,
                                                                  seed: int) -> None:
    # An episode's span ends after its children: its calls reach the store batches before
    # it, or in the same batch, or (the collector, a lake) in any order.
    db = tmp_path / "v2.duckdb"
    build_v2_store(db)
    con = duckdb.connect(str(db))
    spans = con.sql("SELECT * FROM spans").to_arrow_table()
    order = list(range(spans.num_rows))
    random.Random(seed).shuffle(order)
    cuts = sorted(random.Random(seed).sample(range(1, spans.num_rows), 12))
    batches = [spans.take(pa.array(order[a:b])) for a, b in zip([0, *cuts], [*cuts, None],
                                                                strict=True)]
    con.close()
    Store(db).upgrade()  # the schema, then the typed tables emptied and filled batch by batch
    con = duckdb.connect(str(db))
    for table in TYPED_TABLES:
        con.execute(f"DELETE FROM {table}")
    for i, batch in enumerate(batches):
        if i % 2:  # what a lake writer gets (Arrow tables), or the store's own insert
            for name, rows in typed_tables(batch).items():
                con.register("_rows", rows)
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _rows")
                con.unregister("_rows")
        else:
            con.register("_batch", batch)
            insert_typed(con, "_batch")
            con.unregister("_batch")
    assert con.execute("SELECT count(*) > count(DISTINCT episode_id) FROM episode_sums"
                       ).fetchone() == (True,)  # episodes really were split
    _assert_views_as_in_v2(con)
    con.close()


def test_the_first_query_on_a_v2_store_migrates_it_with_a_progress_bar(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "v2.duckdb"
    spans = build_v2_store(db)
    result = subprocess.run(
        [sys.executable, "-m", "shardscope", "query", "--db", str(db), "--format", "csv",
         "SELECT count(*) AS n, sum(llm_calls) AS calls FROM episodes"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "to schema v3" in result.stderr and f"{spans}/{spans}" in result.stderr
    expected = [json.loads(line) for line in (DATA / "views" / "episodes.jsonl").open()]
    n, calls = result.stdout.strip().splitlines()[-1].split(",")
    assert (int(n), int(calls)) == (len(expected), sum(r["llm_calls"] for r in expected))
