"""``Store.session``: the reads of one page load share one read-only connection (each opening
costs about as much as a ``count(*)`` of a 1M-span store), give what separate connections
gave, and let go of the store when the page is done (real DuckDB stores from
tests/analysis_fixtures.py)."""

from __future__ import annotations

import dataclasses
import math
import shutil
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st

from bench.page_loads import page_loaders
from shardscope.analysis.compare import compare
from shardscope.tracer.queries.comparison import Selection, systems_of
from shardscope.tracer.queries.runs import store_summary
from shardscope.tracer.queries.user_sql import run_sql
from shardscope.tracer.store import Store
from tests.analysis_fixtures import divergence_store  # noqa: F401 (fixture)
from tests.test_ui_app import open_app

FOLLOW, LEAD = "follow · react-tools", "lead · react-tools"


def count_openings(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every opening of a store file from now on (its ``read_only``)."""
    opened: list[bool] = []
    real = Store._open

    def counting(self: Store, read_only: bool, config: Any) -> Any:
        opened.append(read_only)
        return real(self, read_only, config)

    monkeypatch.setattr(Store, "_open", counting)
    return opened


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Field by field, frames exactly."""
    assert type(a) is type(b), where
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


def compare_page(store: Store) -> Any:
    return (store_summary(store), systems_of(store),
            compare(store, Selection(suites=("toy",)), clusters=False, systems=(FOLLOW, LEAD)))


def ready(path: Path, lock_timeout: float = 120.0) -> Store:
    store = Store(path, lock_timeout=lock_timeout)
    store.upgrade()  # once per Store, as the app's cached one
    return store


def test_compare_page_opens_the_store_once_and_reads_the_same(
        divergence_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    opened = count_openings(monkeypatch)
    store = ready(divergence_store)
    opened.clear()
    apart = compare_page(store)
    assert len(opened) == 3  # summary, systems, the comparison: one connection each
    store = ready(divergence_store)
    opened.clear()
    with store.session():
        shared = compare_page(store)
    assert opened == [True]
    assert len(shared[2].episodes) > 0 and shared[2].systems == (FOLLOW, LEAD)
    assert_same(shared, apart)


@pytest.mark.parametrize("page", sorted(page_loaders()))
def test_every_bench_page_load_opens_the_store_once(
        page: str, divergence_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    store = ready(divergence_store)
    opened = count_openings(monkeypatch)
    page_loaders()[page](store)
    assert opened == [True]


def test_the_app_reads_a_page_through_one_connection(
        divergence_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    at = open_app(divergence_store, monkeypatch)  # the sidebar's summary is cached now
    st.cache_data.clear()  # a cold page: every loader misses
    opened = count_openings(monkeypatch)
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="compare_systems").value == [FOLLOW, LEAD]
    assert opened == [True]  # summary, systems and the comparison: one opening
    opened.clear()
    at.run()  # every loader hits its cache: nothing opened at all
    assert opened == []


def test_a_session_lets_go_of_the_store_on_exit_and_on_error(divergence_store: Path,  # noqa: F811
                                                             tmp_path: Path) -> None:
    path = Path(shutil.copyfile(divergence_store, tmp_path / "copy.duckdb"))
    store = ready(path, lock_timeout=3)
    with store.session():
        store_summary(store)
        assert store.lock.contended() is False
    with store.writer() as con:  # the shared lock is free again: a writer gets in at once
        con.execute("CREATE TABLE after_session (a INTEGER)")
    with pytest.raises(RuntimeError, match="boom"), store.session():
        store_summary(store)
        raise RuntimeError("boom")
    with store.writer() as con:
        con.execute("DROP TABLE after_session")


def test_a_writer_or_a_sandboxed_reader_inside_a_session(divergence_store: Path,  # noqa: F811
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(shutil.copyfile(divergence_store, tmp_path / "copy.duckdb"))
    store = ready(path, lock_timeout=3)  # a self-deadlock would fail in 3 s, not hang
    opened = count_openings(monkeypatch)
    with store.session():
        before = store_summary(store).spans
        with store.writer() as con:  # this thread's session closes first
            con.execute("CREATE TABLE written (a INTEGER)")
            con.execute("INSERT INTO written VALUES (1), (2)")
        with store.reader() as con:  # reopened: sees the write
            assert con.execute("SELECT sum(a) FROM written").fetchall() == [(3,)]
        # user SQL's sandboxed connection has another configuration: not the session's
        assert run_sql(store, "SELECT count(*) AS n FROM written").to_pylist() == [{"n": 2}]
        assert store_summary(store).spans == before
    assert opened == [True, False, True, True, True]


def test_other_threads_read_through_their_own_connection(divergence_store: Path,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = ready(divergence_store)
    opened = count_openings(monkeypatch)
    results: list[int] = []
    with store.session():
        mine = store_summary(store).spans
        other = threading.Thread(target=lambda: results.append(store_summary(store).spans))
        other.start()
        other.join(timeout=60)
        assert store_summary(store).spans == mine
    assert results == [mine] and mine > 0
    assert opened == [True, True]  # the session's, and the other thread's own
