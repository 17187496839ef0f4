"""Schema versioning: views are refreshed by writers; the version is recorded."""

from __future__ import annotations

from pathlib import Path

import duckdb

from shardscope.tracer.schema import SCHEMA_VERSION, VIEWS, VIEWS_HASH
from shardscope.tracer.store import Store


def test_new_store_records_version_and_views(db_path: Path) -> None:
    with Store(db_path).writer():
        pass
    con = duckdb.connect(str(db_path), read_only=True)
    meta = dict(con.execute("SELECT key, value FROM shardscope_meta").fetchall())
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    con.close()
    assert meta["schema_version"] == str(SCHEMA_VERSION) and meta["views_hash"] == VIEWS_HASH
    assert set(VIEWS) <= views


def test_stale_views_are_replaced_by_the_next_writer(db_path: Path) -> None:
    _stale(db_path)
    with Store(db_path).writer():
        pass
    con = duckdb.connect(str(db_path), read_only=True)
    columns = [d[0] for d in con.execute("SELECT * FROM episodes").description]
    con.close()
    assert "stale" not in columns and "outcome" in columns


def _stale(db_path: Path) -> None:
    with Store(db_path).writer():
        pass
    con = duckdb.connect(str(db_path))
    con.execute("CREATE OR REPLACE VIEW episodes AS SELECT 1 AS stale")
    con.execute("UPDATE shardscope_meta SET value = 'old' WHERE key = 'views_hash'")
    con.close()


def test_a_reader_of_a_store_written_by_another_version_gets_this_versions_views(db_path: Path) -> None:
    # e.g. `shardscope compare` on a store a previous release wrote: no writer comes by.
    _stale(db_path)
    with Store(db_path).reader() as con:
        columns = [d[0] for d in con.execute("SELECT * FROM episodes").description]
        hash_now = con.execute("SELECT value FROM shardscope_meta WHERE key = 'views_hash'").fetchone()[0]
    assert "stale" not in columns and "baseline_episode_key" in columns and hash_now == VIEWS_HASH



def test_a_version_1_store_migrates_to_the_current_version_and_keeps_its_spans(db_path: Path) -> None:
    from shardscope.tracer.schema import TABLES_V1

    con = duckdb.connect(str(db_path))
    con.execute(TABLES_V1)
    con.execute("INSERT INTO shardscope_meta VALUES ('schema_version', '1'), ('written_by', 'old')")
    con.execute("INSERT INTO spans (trace_id, span_id, name, span_type) VALUES ('t', 's', 'old span', 'span')")
    con.close()
    with Store(db_path).writer() as writer:
        writer.execute("INSERT INTO log_events (event_name, record_id) VALUES ('gen_ai.choice', 'r')")
    con = duckdb.connect(str(db_path), read_only=True)
    version = con.execute("SELECT value FROM shardscope_meta WHERE key = 'schema_version'").fetchone()[0]
    old = con.execute("SELECT name, trace_state, flags, scope_attributes FROM spans").fetchall()
    logs = con.execute("SELECT event_name FROM log_events").fetchall()
    comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'log_events'").fetchone()[0]
    con.close()
    assert SCHEMA_VERSION == 3 and version == "3"
    assert old == [("old span", None, None, None)] and logs == [("gen_ai.choice",)]
    assert "GenAI content events" in comment
