"""The span pipeline: bursts arrive complete, backpressure instead of drops, spill + recovery."""

from __future__ import annotations

import sys
import threading
import traceback
from pathlib import Path

import duckdb
import pytest
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shardscope.config.settings import Settings
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.status import store_status
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.sinks import ExporterSink, spill_dir
from shardscope.tracer.store import Store
from tests.helpers.wait import wait_until


def _count(db: Path, table: str = "spans") -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_burst_of_100k_spans_arrives_complete(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    for i in range(100_000):
        with tracing.span("burst", SpanType.SPAN, {"i": i, "gen_ai.request.model": "m"}):
            pass
    tracing.shutdown()
    assert _count(db_path) == 100_000
    con = duckdb.connect(str(db_path), read_only=True)
    distinct = con.execute("SELECT count(DISTINCT span_id), min(attributes->>'$.i')::INT, "
                           "max((attributes->>'$.i')::INT) FROM spans").fetchone()
    con.close()
    assert distinct == (100_000, 0, 99_999)
    stats = tracing.stats()["duckdb"]
    assert stats["spans_written"] == 100_000 and stats["lost_spans"] == 0


def _functions_on(thread: threading.Thread) -> list[str]:
    """The function names on a running thread's stack right now."""
    frame = sys._current_frames().get(thread.ident or -1)
    return [f.name for f in traceback.extract_stack(frame)] if frame is not None else []


def test_full_buffer_blocks_the_producer_instead_of_dropping(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path, max_buffered_spans=200), strict=True)
    store = tracing.store
    assert store is not None
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with store.lock.exclusive():
            held.set()
            release.wait(300)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert held.wait(300)
    producer_done = threading.Event()

    def produce() -> None:
        for i in range(1_000):
            with tracing.span("bp", SpanType.SPAN, {"i": i}):
                pass
        producer_done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    # The handshake: the producer is seen inside the processor's wait for room (or done).
    wait_until(lambda: producer_done.is_set() or "_wait_for_room" in _functions_on(producer),
               "the producer to block on the full buffer")
    assert not producer_done.is_set(), "the producer must wait while the buffer is full"
    release.set()
    holder.join()
    producer.join(300)
    assert producer_done.is_set()
    tracing.shutdown()
    stats = tracing.stats()["duckdb"]
    assert _count(db_path) == 1_000
    assert stats["backpressure_waits"] >= 1 and stats["backpressure_seconds"] > 0
    status = store_status(Store(db_path))
    assert status.writers[-1]["backpressure_waits"] >= 1


def test_unreachable_store_spills_and_next_writer_recovers(db_path: Path) -> None:
    store = Store(db_path)
    with store.writer():
        pass  # create the store
    settings = Settings(db=db_path, lock_timeout=0.2, flush_interval=0.05)
    tracing = setup_tracing(settings, strict=False)
    for processor in tracing.processors:
        processor._shutdown_timeout = 0.5
    blocker_ready, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with Store(db_path).lock.exclusive():
            blocker_ready.set()
            release.wait(300)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert blocker_ready.wait(300)
    for i in range(50):
        with tracing.span("unlucky", SpanType.SPAN, {"i": i}):
            pass
    tracing.shutdown()
    release.set()
    holder.join()
    stats = tracing.stats()["duckdb"]
    assert stats["spilled_spans"] == 50 and stats["lost_spans"] == 0
    assert stats["write_errors"] >= 1
    assert len(list(spill_dir(store).glob("*.spans.parquet"))) >= 1
    assert _count(db_path) == 0
    assert store_status(store).pending_spill_files >= 1

    later = setup_tracing(Settings(db=db_path), strict=True)
    with later.span("next run", SpanType.SPAN):
        pass
    later.shutdown()
    assert _count(db_path) == 51
    assert later.stats()["duckdb"]["recovered_spans"] == 50
    assert not list(spill_dir(store).glob("*.parquet"))
    assert _count(db_path, "ingested_spills") >= 1


class _FailingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        return None


def test_failing_secondary_exporter_is_counted_and_never_blocks_the_store(db_path: Path) -> None:
    failing = _FailingExporter()
    tracing = setup_tracing(
        Settings(db=db_path, flush_interval=0.05),
        extra_sinks=[ExporterSink(failing, "flaky")],
        strict=False,
    )
    for i in range(20):
        with tracing.span("both", SpanType.SPAN, {"i": i}):
            pass
    tracing.shutdown()
    stats = tracing.stats()
    assert stats["duckdb"]["spans_written"] == 20
    assert stats["flaky"]["dropped_spans"] == 20
    assert failing.calls >= 3
    assert _count(db_path) == 20


def test_strict_mode_surfaces_sink_bugs(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path, flush_interval=0.05), strict=True)
    sink = tracing.processors[0].sink

    def broken(spans):
        raise ValueError("conversion bug")

    sink.prepare = broken  # type: ignore[method-assign]
    with tracing.span("x", SpanType.SPAN):
        pass
    with pytest.raises(RuntimeError, match="conversion bug"):
        tracing.shutdown()
    assert tracing.stats()["duckdb"]["lost_spans"] == 1


def test_spans_after_shutdown_are_still_delivered(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    tracer = tracing.tracer
    tracing.processors[0].shutdown()
    with tracer.start_as_current_span("late"):
        pass
    assert _count(db_path) == 1
    assert tracing.stats()["duckdb"]["late_spans"] == 1
