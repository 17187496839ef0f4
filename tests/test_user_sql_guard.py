"""User SQL is one read statement, with a locked configuration, a memory limit and a time
limit; the console runs it in a worker process that no query can take down with the app
(issue 16, findings 1 and 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shardscope.config.errors import QueryError
from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.sql_worker import SqlWorker
from shardscope.tracer.queries.user_sql import SqlLimits, run_sql
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store

ROOT = Path(__file__).resolve().parents[1]
ENABLE_LOGGING = "CALL enable_logging(storage='file', storage_path='/x')"
LOGGING_AS_SELECT = "FROM enable_logging(storage='file', storage_path='/x')"
CROSS_JOIN = "SELECT count(*) FROM range(100000000) a, range(100000000) b"


@pytest.fixture
def store(db_path: Path) -> Store:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with tracing.inherit({A.MODEL_ID: "m"}):
        with tracing.span("invoke_agent s", SpanType.EPISODE, {A.EPISODE_OUTCOME: "success"}):
            pass
    tracing.shutdown()
    return Store(db_path, lock_timeout=5)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardscope", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("sql", [ENABLE_LOGGING, LOGGING_AS_SELECT])
def test_enable_logging_is_a_one_line_error_not_an_abort(store: Store, sql: str) -> None:
    out = _cli("query", "--db", str(store.path), sql)
    assert out.returncode == 1, (out.returncode, out.stderr)  # was 134 (abort)
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
    assert "terminate" not in out.stderr


@pytest.mark.parametrize(("sql", "says"), [
    ("DELETE FROM spans", "got DELETE"),
    ("SET memory_limit = '100GB'", "got SET"),
    ("PRAGMA enable_profiling", "got PRAGMA"),
    ("SELECT 1; SELECT 2", "one statement at a time"),
    ("EXPLAIN DELETE FROM spans", "EXPLAIN of DELETE"),
    ("ATTACH '/tmp/other.duckdb'", "got ATTACH"),
])
def test_only_read_statements_run(store: Store, sql: str, says: str) -> None:
    with pytest.raises(QueryError, match=says):
        run_sql(store, sql)


def test_read_statements_of_every_shape_run(store: Store) -> None:
    for sql in ("SELECT count(*) AS n FROM spans", "FROM episodes", "WITH a AS (SELECT 1 AS x) "
                "SELECT * FROM a", "DESCRIBE episodes", "SHOW TABLES", "EXPLAIN SELECT 1",
                "SELECT 1;"):
        assert run_sql(store, sql).num_rows >= 1, sql


def test_time_limit_interrupts_and_releases_the_store(store: Store) -> None:
    # the error itself says the query was interrupted at its limit (run to the end it takes
    # hours, and pytest's own timeout stops a hang)
    with pytest.raises(QueryError, match=r"stopped after 1 s .*sql_timeout"):
        run_sql(store, CROSS_JOIN, limits=SqlLimits(timeout=1.0))
    with Store(store.path, lock_timeout=5).writer() as con:  # the lock is free again
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (1,)


def test_time_limit_is_a_setting(store: Store) -> None:
    out = _cli("query", "--db", str(store.path), CROSS_JOIN, env={"SHARDSCOPE_SQL_TIMEOUT": "1"})
    assert out.returncode == 1 and "stopped after 1 s" in out.stderr


def test_memory_limit(store: Store) -> None:
    with pytest.raises(QueryError, match="Out of Memory.*sql_memory_limit"):
        run_sql(store, "SELECT list(range) FROM range(100000000)",
                limits=SqlLimits(memory_limit="64MB"))


def test_worker_answers_like_run_sql_and_refuses_like_it(store: Store) -> None:
    worker = SqlWorker()
    try:
        table = worker.run(str(store.path), "SELECT count(*) AS n FROM spans", max_rows=None,
                           limits=SqlLimits(), lock_timeout=5)
        assert table.column("n")[0].as_py() == 1
        with pytest.raises(QueryError, match="configuration has been locked"):
            worker.run(str(store.path), LOGGING_AS_SELECT, max_rows=None, limits=SqlLimits(),
                       lock_timeout=5)
    finally:
        worker.close()


def test_a_crashing_query_takes_down_only_the_worker(store: Store) -> None:
    worker = SqlWorker()
    try:
        worker.run(str(store.path), "SELECT 1", max_rows=None, limits=SqlLimits(), lock_timeout=5)
        proc = worker._proc
        assert proc is not None
        # What an abort inside DuckDB looks like from outside: the process dies mid-query.
        threading.Timer(1.0, os.kill, (proc.pid, signal.SIGABRT)).start()
        with pytest.raises(QueryError, match="crashed its worker process .signal SIGABRT"):
            worker.run(str(store.path), CROSS_JOIN, max_rows=None, limits=SqlLimits(),
                       lock_timeout=5)
        table = worker.run(str(store.path), "SELECT count(*) AS n FROM spans", max_rows=None,
                           limits=SqlLimits(), lock_timeout=5)
        assert table.column("n")[0].as_py() == 1 and worker._proc is not proc
        with Store(store.path, lock_timeout=5).writer():  # the dead worker held no lock
            pass
    finally:
        worker.close()
