"""The app's SQL console is crash-proof (issue 16, findings 1 and 2, through the real app).

``streamlit.testing`` runs the app's script inside this test process, so a query that
brought its process down would end the test run itself: the console's queries run in the
worker process (tracer/queries/sql_worker.py), and whatever happens to it, the app shows one
error line and the next query works."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests.test_ui_app import frame, open_app, texts

ENABLE_LOGGING = "CALL enable_logging(storage='file', storage_path='/x')"  # exit 134 before
CROSS_JOIN = "SELECT count(*) FROM range(100000000) a, range(100000000) b"
HUGE_VALUE = "SELECT length(repeat('x', 1500000000)) AS n"  # past DuckDB's memory_limit


def _query(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="sql_text").set_value(sql).run()
    at.button(key="sql_run").click().run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _spans(at: AppTest) -> int:
    """The store's span count through the console, by a query text not asked before (the
    app caches results by query)."""
    _spans.asked = getattr(_spans, "asked", 0) + 1  # type: ignore[attr-defined]
    _query(at, f"SELECT count(*) AS n FROM spans WHERE {_spans.asked} > 0")  # type: ignore[attr-defined]
    assert not at.error, texts(at.error)
    return int(frame(at, "n").n[0])


def _workers() -> list[int]:
    """This process's console workers (children running the worker module)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("PPid:"))
        if ppid == os.getpid() and b"shardscope.tracer.queries.sql_worker" in cmdline:
            found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _abort_once_busy(pid: int) -> None:
    """SIGABRT to the worker once it has spent half a second of CPU on the query."""
    from tests.helpers.wait import wait_until

    start = _cpu_ticks(pid)
    wait_until(lambda: _cpu_ticks(pid) - start >= os.sysconf("SC_CLK_TCK") // 2, timeout=120,
               what="the worker to run the query")
    os.kill(pid, signal.SIGABRT)


@pytest.fixture
def console(fixture_store: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SHARDSCOPE_SQL_MEMORY_LIMIT", "256MB")
    at = open_app(fixture_store, monkeypatch, "app_pages/sql.py")
    assert _spans(at) == 218
    return at


@pytest.mark.parametrize("sql", [ENABLE_LOGGING, "FROM enable_logging(storage='file', "
                                                 "storage_path='/x')"])
def test_the_query_that_aborted_the_server_is_an_error_line(console: AppTest, sql: str) -> None:
    _query(console, sql)
    assert len(texts(console.error)) == 1 and texts(console.error)[0].startswith("Query failed:")
    assert _spans(console) == 218


def test_a_huge_value_is_stopped_by_the_workers_memory_limit(console: AppTest) -> None:
    # before: the worker grew past DuckDB's memory_limit and, uninterruptible, ran until its
    # deadline killed it (45 s measured); now its address space is limited for the query
    (worker,) = _workers()
    _query(console, HUGE_VALUE)
    (message,) = texts(console.error)
    assert message.startswith("Query failed: Out of Memory Error"), message
    assert "sql_memory_limit" in message
    assert _spans(console) == 218 and _workers() == [worker]  # the same worker goes on


def test_a_worker_killed_mid_query_leaves_the_app_serving(console: AppTest,
                                                          fixture_store: Path) -> None:
    (worker,) = _workers()
    # What an abort inside DuckDB looks like from outside: the worker dies mid-query. In the
    # app's own process, this would have ended this test process with it.
    killer = threading.Thread(target=_abort_once_busy, args=(worker,), daemon=True)
    killer.start()
    _query(console, CROSS_JOIN)
    killer.join(timeout=60)
    (message,) = texts(console.error)
    assert "crashed its worker process (signal SIGABRT); the app is unaffected" in message
    console.run()  # any rerun shows the failure again without running the query again
    assert texts(console.error) == [message] and _workers() == []
    assert _spans(console) == 218
    (replacement,) = _workers()
    assert replacement != worker
    with Store(fixture_store, lock_timeout=5).reader():  # the dead worker left no lock
        assert read_frame(Store(fixture_store), "SELECT count(*) AS n FROM spans").n[0] == 218
