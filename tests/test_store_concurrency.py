"""Several processes on one store: writers, readers, a killed writer. No lock error, no loss."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from shardscope.tracer.queries.user_sql import run_sql
from shardscope.tracer.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _writer(db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.span_writer", "--db", str(db), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _count(db: Path, where: str = "") -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM spans {where}").fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_reader_process_queries_while_writer_writes(db_path: Path, tmp_path: Path) -> None:
    # The writer commits its first batch, then waits for `go`, which the reader creates after
    # its first query: the reader provably overlaps the writer, however slow the machine.
    go = tmp_path / "go"
    writer = _writer(db_path, "--spans", "20000", "--batch", "200", "--sleep", "0.02", "--hold", str(go))
    assert writer.stdout is not None
    first = writer.stdout.readline()
    assert first == "flushed 200\n", first + (writer.stderr.read() if writer.stderr else "")
    reader = subprocess.run(
        [sys.executable, "-c", _READER, str(db_path), str(go), "20000"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    _out, err = writer.communicate(timeout=600)
    assert writer.returncode == 0, err
    assert reader.returncode == 0, reader.stderr
    counts = [int(x) for x in reader.stdout.split()]
    assert counts[0] == 200, "the first query ran while the writer held after one batch"
    assert counts == sorted(counts), "a count went down"
    assert counts[-1] == 20_000
    assert _count(db_path) == 20_000


_READER = """
import sys, time
from pathlib import Path
from shardscope.tracer.store import Store
from shardscope.tracer.queries.user_sql import run_sql
store, go, total = Store(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 300  # a hung writer, not a speed bound
while True:
    n = run_sql(store, "SELECT count(*) AS n FROM spans").column("n")[0].as_py()
    print(n, flush=True)
    go.touch()  # after the first query: let the writer go on
    if n == total or time.monotonic() > deadline:
        break
    time.sleep(0.05)
"""


@pytest.mark.slow
def test_two_writer_processes_at_once_both_complete(db_path: Path) -> None:
    a = _writer(db_path, "--spans", "8000", "--batch", "100", "--tag", "A")
    b = _writer(db_path, "--spans", "8000", "--batch", "100", "--tag", "B")
    for proc in (a, b):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert _count(db_path, "WHERE run_id = 'A'") == 8000
    assert _count(db_path, "WHERE run_id = 'B'") == 8000


@pytest.mark.slow
def test_sigkilled_writer_keeps_every_flushed_span(db_path: Path) -> None:
    writer = _writer(db_path, "--spans", "1000000", "--batch", "500", "--ack")
    acknowledged = 0
    assert writer.stdout is not None
    while acknowledged < 5000:
        line = writer.stdout.readline()
        assert line, writer.stderr.read() if writer.stderr else "writer died"
        acknowledged = int(line.split()[1])
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    store = Store(db_path)
    survived = run_sql(store, "SELECT count(*) AS n FROM spans").column("n")[0].as_py()
    assert survived >= acknowledged
    # and the store is still writable afterwards
    again = _writer(db_path, "--spans", "10", "--tag", "after")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert _count(db_path, "WHERE run_id = 'after'") == 10


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_flushes_buffered_spans(db_path: Path, sig: signal.Signals) -> None:
    writer = _writer(db_path, "--spans", "300", "--batch", "300", "--then-wait")
    assert writer.stdout is not None
    assert writer.stdout.readline().startswith("done 300")
    writer.send_signal(sig)
    writer.wait(60)
    assert _count(db_path) == 300


def test_store_lock_error_never_reaches_a_reader(db_path: Path) -> None:
    """A reader that arrives while a writer holds the file waits instead of failing."""
    store = Store(db_path)
    with store.writer() as con:
        con.execute("INSERT INTO shardscope_meta VALUES ('probe', '1')")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db_path)], cwd=ROOT,
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    # The holder lets go only once it sees a reader waiting at the door (StoreLock.contended).
    table = run_sql(store, "SELECT count(*) AS n FROM shardscope_meta WHERE key = 'probe'")
    out, _ = holder.communicate(timeout=300)
    assert holder.returncode == 0 and out.strip() == "released: a reader was waiting", out
    assert table.column("n")[0].as_py() == 1


_HOLDER = """
import sys, time
from shardscope.tracer.store import Store
store = Store(sys.argv[1])
with store.writer() as con:
    print("holding", flush=True)
    deadline = time.monotonic() + 300
    while not store.lock.contended():
        if time.monotonic() > deadline:
            sys.exit("no reader came in 300 s")
        time.sleep(0.01)
print("released: a reader was waiting", flush=True)
"""
