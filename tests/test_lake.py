"""The Parquet lake: the real runner writes one matrix through the DuckDB and the parquet
exporters at once; every view over the lake equals the store's; `compact` rebuilds the store,
idempotently; query, status, compare and the UI read a lake; foreign, corrupt and cut-short
files, and a writer killed mid-run, are skipped and counted with nothing else lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from shardscope.config.errors import ConfigError, StoreError
from shardscope.config.settings import Settings
from shardscope.scaffolds.runner.runner import Runner
from shardscope.tracer.compact import compact
from shardscope.tracer.lake import MARKER
from shardscope.tracer.lake_store import LakeStore, open_source
from shardscope.tracer.queries.status import store_status, store_version
from shardscope.tracer.schema import VIEWS
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import ui_fixtures as F
from tests.helpers.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
# Columns naming the process that wrote a row: each sink has its own writer id.
WRITER_COLUMNS = ("writer_id", "writer_heard_at")


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The UI fixture matrix, run once, written to a DuckDB store and a lake together."""
    where = tmp_path_factory.mktemp("lake-twin")
    db, lake = where / "store.duckdb", where / "lake"
    settings = Settings(db=db, lake=lake, exporters=("duckdb", "parquet"), flush_interval=0.1)
    tracing = setup_tracing(settings, strict=True)
    try:
        runner = Runner(tracing, F._resources(F._models(tracing)), progress=False)
        asyncio.run(runner.run(F.SPEC))
    finally:
        tracing.shutdown()
    return db, lake


def view_frame(store: Store, name: str) -> pd.DataFrame:
    with store.reader() as con:
        frame = con.sql(f"SELECT * FROM {name}").df()
    frame = frame.drop(columns=[c for c in WRITER_COLUMNS if c in frame.columns])
    return frame.astype(str).sort_values(list(frame.columns)).reset_index(drop=True)


def columns(store: Store, name: str) -> list[tuple[str, str]]:
    with store.reader() as con:
        return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]


def test_every_view_over_the_lake_equals_the_store(twin: tuple[Path, Path]) -> None:
    db, lake = twin
    store, lake_store = Store(db), open_source(lake)
    assert isinstance(lake_store, LakeStore)
    assert (lake / "spans").is_dir() and any((lake / "spans").glob("run=*/writer=*/*.parquet"))
    for name in [*VIEWS, "spans", "span_events"]:
        assert columns(lake_store, name) == columns(store, name), name
        ours, theirs = view_frame(lake_store, name), view_frame(store, name)
        assert len(theirs) > 0 or name in ("llm_attempts",), name
        pd.testing.assert_frame_equal(ours, theirs, obj=name)


def test_compact_rebuilds_the_store_and_is_idempotent(twin: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    db, lake = twin
    out = Store(tmp_path / "compacted.duckdb")
    first = compact(LakeStore(lake), out)
    with Store(db).reader() as con:
        spans, events = con.execute(
            "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM span_events)").fetchone()
    assert first.added["spans"] == spans and first.added["span_events"] == events
    assert first.skipped == ()
    again = compact(LakeStore(lake), out)
    assert sum(again.added.values()) == 0
    assert again.present["spans"] == spans
    for name in ("episodes", "llm_calls", "tool_calls", "token_events"):
        pd.testing.assert_frame_equal(view_frame(out, name), view_frame(Store(db), name), obj=name)


def shardscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardscope", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def test_query_status_and_compare_read_a_lake(twin: tuple[Path, Path]) -> None:
    db, lake = twin
    done = shardscope("query", "--db", str(lake), "--format", "json",
                      "SELECT model, count(*) AS n FROM episodes GROUP BY model ORDER BY model")
    assert done.returncode == 0, done.stderr
    with Store(db).reader() as con:
        expected = con.execute(
            "SELECT model, count(*) AS n FROM episodes GROUP BY model ORDER BY model").fetchall()
    assert [(r["model"], r["n"]) for r in json.loads(done.stdout)] == expected
    status = shardscope("status", "--db", str(lake), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["episodes"] == sum(n for _, n in expected)
    compared = shardscope("compare", "--db", str(lake), "-s", "toy", "-m", "alpha,beta",
                          "--no-clusters")
    assert compared.returncode == 0, compared.stderr
    assert "alpha" in compared.stdout and "beta" in compared.stdout
    # User SQL over a lake may read the lake's files, nothing else.
    denied = shardscope("query", "--db", str(lake), "SELECT * FROM read_csv('/etc/passwd')")
    assert denied.returncode == 1 and "cannot read or write files" in denied.stderr


def test_the_app_reads_a_lake(twin: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    db, lake = twin
    shown = {}
    for path in (db, lake):
        monkeypatch.setenv("SHARDSCOPE_DB", str(path))
        at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown[path] = {m.label: m.value for m in at.sidebar.metric}
    assert shown[lake] == shown[db] and shown[lake]


def copy_lake(lake: Path, where: Path) -> Path:
    import shutil

    return Path(shutil.copytree(lake, where / "lake"))


def test_foreign_corrupt_and_cut_short_files_are_skipped_and_counted(
        twin: tuple[Path, Path], tmp_path: Path) -> None:
    db, source = twin
    lake = copy_lake(source, tmp_path)
    good = next((lake / "spans").rglob("*.parquet"))
    spans_dir = good.parent
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), spans_dir / "foreign.parquet")
    (spans_dir / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet at all")
    data = good.read_bytes()
    (spans_dir / "cut.parquet").write_bytes(data[: len(data) // 2])  # a half-copied file
    (spans_dir / ".00009999.parquet.tmp").write_bytes(data[:100])  # a killed writer's file
    (lake / "notes").mkdir()
    pq.write_table(pa.table({"trace_id": ["t"]}), lake / "notes" / "elsewhere.parquet")
    store = LakeStore(lake)
    with store.reader() as con:
        skipped = dict(con.execute("SELECT path, reason FROM lake_skipped_files").fetchall())
        spans = con.execute("SELECT count(*) FROM spans").fetchone()
    with Store(db).reader() as con:
        assert spans == con.execute("SELECT count(*) FROM spans").fetchone()
    names = {Path(p).name: reason for p, reason in skipped.items()}
    assert set(names) == {"foreign.parquet", "corrupt.parquet", "cut.parquet", "elsewhere.parquet"}
    assert "foreign Parquet file for table spans" in names["foreign.parquet"]
    assert "not a readable Parquet file" in names["corrupt.parquet"]
    assert "not a readable Parquet file" in names["cut.parquet"]
    assert "not in a table directory" in names["elsewhere.parquet"]
    status = store_status(store)
    assert len(status.lake_skipped_files) == 4 and status.lake_temporary_files == 1
    assert any("4 lake file(s) skipped" in p for p in status.problems)
    out = shardscope("compact", str(lake), "--db", str(tmp_path / "out.duckdb"))
    assert out.returncode == 0, out.stderr
    assert "4 file(s) skipped" in out.stderr and "1 temporary file(s) ignored" in out.stderr
    assert "Traceback" not in out.stderr
    with Store(tmp_path / "out.duckdb").reader() as con:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == spans


WRITER = """
import sys, time
from shardscope.config.settings import Settings
from shardscope.tracer.setup import setup_tracing
settings = Settings(exporters=("parquet",), lake=sys.argv[1], flush_interval=0.05)
tracing = setup_tracing(settings, strict=True)
tracer = tracing.provider.get_tracer("killed")
i = 0
while True:
    with tracer.start_as_current_span("s", attributes={"shardscope.run.id": "r", "n": i}) as s:
        s.add_event("tok", {"k": i})
    i += 1
    if i % 200 == 0:
        time.sleep(0.01)
"""


def test_a_writer_killed_mid_run_loses_nothing_it_had_written(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(lake)]) for _ in range(2)]
    try:
        def written() -> bool:
            assert all(w.poll() is None for w in writers), "a writer died on its own"
            return len(list((lake / "spans").rglob("*.parquet"))) >= 6

        wait_until(written, timeout=120, what="the writers' first files")
        writers[0].send_signal(signal.SIGKILL)
        writers[0].wait(timeout=60)
        count = lambda: sum(pq.read_metadata(f).num_rows for f in (lake / "spans").rglob("*.parquet"))  # noqa: E731
        before = count()
        wait_until(lambda: count() > before, timeout=120, what="the survivor writing on")
    finally:
        for writer in writers:
            writer.kill()
            writer.wait(timeout=60)
    store = LakeStore(lake)
    with store.reader() as con:
        rows, distinct, events = con.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)), "
            "(SELECT count(*) FROM span_events) FROM spans").fetchone()
    assert store.last_scan is not None and store.last_scan.skipped == []
    assert rows == distinct == count() and rows > 0
    assert events >= rows  # every span had one event; a span's events are written first


def test_bad_lake_settings_and_paths_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exporter 'parquet' needs a lake directory"):
        Settings(exporters=("parquet",))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(StoreError, match="not a shardscope lake"):
        with open_source(plain).reader():
            pass
    done = shardscope("query", "--db", str(plain), "SELECT 1")
    assert done.returncode == 1 and "not a shardscope lake" in done.stderr
    done = shardscope("compact", str(tmp_path / "missing"), "--db", str(tmp_path / "o.duckdb"))
    assert done.returncode == 1 and "is missing: pass the lake's directory" in done.stderr
    (plain / MARKER).write_text('{"format": 1, "schema_version": 99}\n')
    with pytest.raises(StoreError, match="newer than this shardscope"):
        with LakeStore(plain).reader():
            pass
    with pytest.raises(StoreError, match="is a Parquet lake"):
        LakeStore(plain).check_usable()


def test_the_change_token_moves_when_a_file_lands(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    tracing = setup_tracing(exporters=["parquet"], lake=lake, strict=True)
    tracer = tracing.provider.get_tracer("t")
    with tracer.start_as_current_span("one"):
        pass
    tracing.force_flush()
    first = store_version(lake)
    with tracer.start_as_current_span("two"):
        pass
    tracing.shutdown()
    assert store_version(lake) != first
