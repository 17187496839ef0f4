"""Bad input to the store gives one actionable error and loses nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from shardscope.config.errors import QueryError, StoreError, StoreNotFoundError, StoreVersionError
from shardscope.config.settings import Settings
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.user_sql import run_sql
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store


def _store_with_one_span(db: Path) -> Store:
    tracing = setup_tracing(Settings(db=db), strict=True)
    with tracing.span("one", SpanType.SPAN):
        pass
    tracing.shutdown()
    return Store(db)


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM no_such_view", "query --schema"),
        ("SELECT no_such_column FROM episodes", "query --schema"),
        ("DELETE FROM spans", "cannot change the store"),
        ("DROP TABLE spans", "cannot change the store"),
        ("COPY spans TO '/tmp/stolen.csv'", "outside the store"),
        ("SELECT * FROM read_csv('/etc/passwd')", "outside the store"),
        ("", "empty query"),
    ],
)
def test_bad_sql_is_one_clear_error_and_loses_nothing(db_path: Path, sql: str, fragment: str) -> None:
    store = _store_with_one_span(db_path)
    with pytest.raises(QueryError) as info:
        run_sql(store, sql)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert run_sql(store, "SELECT count(*) AS n FROM spans").column("n")[0].as_py() == 1


def test_missing_store_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="shardscope demo"):
        run_sql(Store(tmp_path / "absent.duckdb"), "SELECT 1")


def test_not_a_duckdb_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(StoreError, match="not a DuckDB database"):
        run_sql(Store(path), "SELECT 1")


def test_foreign_duckdb_file_without_our_tables(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t(a INT)")
    con.close()
    with pytest.raises(StoreNotFoundError, match="holds no shardscope data"):
        run_sql(Store(path), "SELECT 1")


def test_unwritable_store_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = Store(blocker / "sub" / "store.duckdb")  # parent is a file: cannot be created
    with pytest.raises(StoreError, match="cannot create the directory"), store.writer():
        pass


def test_store_from_a_newer_schema_is_refused(db_path: Path) -> None:
    _store_with_one_span(db_path)
    con = duckdb.connect(str(db_path))
    con.execute("UPDATE shardscope_meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreVersionError, match="upgrade shardscope"):
        run_sql(Store(db_path), "SELECT 1")
    tracing = setup_tracing(Settings(db=db_path), strict=False)
    with tracing.span("refused", SpanType.SPAN):
        pass
    for processor in tracing.processors:
        processor._shutdown_timeout = 0.5
    tracing.shutdown()
    stats = tracing.stats()["duckdb"]
    assert stats["spans_written"] == 0 and stats["spilled_spans"] == 1
    assert "newer than this shardscope" in (stats["last_error"] or "")
