"""Sinks for :class:`shardscope.tracer.pipeline.ReliableSpanProcessor`: the DuckDB store, any SpanExporter."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shardscope.tracer.encoding import SpanBatch, promoted_select_sql
from shardscope.tracer.pipeline import PipelineStats
from shardscope.tracer.store import Store, WriterSession
from shardscope.tracer.typed import insert_typed

log = logging.getLogger("shardscope.tracer")
PROMOTE_SPANS = promoted_select_sql("_shardscope_spans")
# During a burst the writer keeps the store open between batches, but never longer than this
# without letting readers in.
MAX_HOLD_S = 0.5
YIELD_EVERY = 64
# A writer with nothing to write says it is alive this often (a `writer_stats` row), so the
# `runs` view can tell a quiet run (a long model call) from one whose process died
# (tracer.schema.STALE_AFTER_S).
HEARTBEAT_S = 10.0


@dataclass(frozen=True)
class PreparedBatch:
    spans: pa.Table
    events: pa.Table
    dropped: dict[str, int]


def spill_dir(store: Store) -> Path:
    return store.path.with_name(store.path.name + ".spill")


class DuckDBSink:
    """Appends span batches to the store with Arrow (one transaction per batch)."""

    name = "duckdb"
    primary = True
    heartbeat_interval: float | None = HEARTBEAT_S  # see ReliableSpanProcessor._write_loop

    def __init__(self, store: Store, service_name: str = "shardscope") -> None:
        self.store = store
        self.service_name = service_name
        self.writer_id = uuid.uuid4().hex[:16]
        self.started_at = datetime.now(UTC)
        self._spill_seq = 0
        self._checked_spills = False
        self._has_written = False
        self._writer: WriterSession | None = None

    def prepare(self, spans: Sequence[ReadableSpan]) -> PreparedBatch:
        # Conversion holds the GIL; yielding it every few hundred spans keeps the traced
        # program's threads from waiting a whole switch interval (5 ms) behind us.
        batch = SpanBatch(self.writer_id).add_all(spans, yield_every=YIELD_EVERY)
        spans_table, events_table = batch.tables()
        return PreparedBatch(spans_table, events_table, dict(batch.dropped))

    def write(self, prepared: PreparedBatch, stats: PipelineStats) -> None:
        recovered: list[Path] = []
        session = self._session()
        con = session.connection
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                if not self._checked_spills:
                    recovered = self._recover_spills(con, stats)
                prepared = self.append(con, prepared)
                self._record_stats(con, stats, prepared)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except BaseException:
            self.idle()  # a failed connection is never reused
            raise
        if self.release_after_write(session):
            self.idle()
        self._checked_spills = True
        self._has_written = True
        stats.add(
            spans_written=prepared.spans.num_rows,
            events_written=prepared.events.num_rows,
            batches=1,
            sdk_dropped_attributes=prepared.dropped["attributes"],
            sdk_dropped_events=prepared.dropped["events"],
            sdk_dropped_links=prepared.dropped["links"],
        )
        for path in recovered:
            path.unlink(missing_ok=True)

    def release_after_write(self, session: WriterSession) -> bool:
        """Whether to close the store after a write: a long burst lets waiting readers in at
        least every MAX_HOLD_S."""
        return time.monotonic() - session.opened_at > MAX_HOLD_S

    def append(self, con: duckdb.DuckDBPyConnection, prepared: PreparedBatch) -> PreparedBatch:
        """Insert a batch inside the open transaction; returns what was actually inserted
        (the collector's sink leaves out spans the store already holds)."""
        _append(con, prepared.spans, prepared.events)
        return prepared

    def heartbeat(self, stats: PipelineStats) -> None:
        """Record the current counters (a `writer_stats` row): this process is alive.

        Called by the pipeline after ``heartbeat_interval`` seconds without a batch. A sink
        that has written nothing yet, or whose store was deleted, stays silent: no store is
        created for a heartbeat."""
        if not self._has_written or not self.store.exists():
            return
        session = self._session()
        try:
            self._record_stats(session.connection, stats, None)
        finally:
            self.idle()

    def _record_stats(
        self, con: duckdb.DuckDBPyConnection, stats: PipelineStats, batch: PreparedBatch | None
    ) -> None:
        s = stats.snapshot()
        spans, events = (batch.spans.num_rows, batch.events.num_rows) if batch else (0, 0)
        dropped = batch.dropped if batch else {"attributes": 0, "events": 0, "links": 0}
        con.execute(
            "INSERT INTO writer_stats VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?)",
            [
                self.writer_id, os.getpid(), socket.gethostname(), self.service_name,
                self.started_at,
                s["spans_written"] + spans,
                s["events_written"] + events,
                s["batches"] + (1 if batch else 0), s["backpressure_waits"],
                s["backpressure_seconds"],
                s["write_errors"], s["spilled_spans"], s["recovered_spans"], s["lost_spans"],
                s["sdk_dropped_attributes"] + dropped["attributes"],
                s["sdk_dropped_events"] + dropped["events"],
                s["sdk_dropped_links"] + dropped["links"],
                s["dropped_spans"], s["last_error"],
            ],
        )

    def spill(self, prepared: PreparedBatch, stats: PipelineStats) -> str | None:
        """Write the batch as Parquet beside the store; the next writer ingests it."""
        directory = spill_dir(self.store)
        directory.mkdir(parents=True, exist_ok=True)
        self._spill_seq += 1
        stem = f"{self.writer_id}-{os.getpid()}-{self._spill_seq:06d}"
        for kind, table in (("events", prepared.events), ("spans", prepared.spans)):
            final = directory / f"{stem}.{kind}.parquet"
            tmp = final.with_suffix(".tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, final)  # spans file last: its presence means the pair is complete
        return str(directory / f"{stem}.spans.parquet")

    def _recover_spills(self, con: duckdb.DuckDBPyConnection, stats: PipelineStats) -> list[Path]:
        directory = spill_dir(self.store)
        if not directory.is_dir():
            return []
        done = {r[0] for r in con.execute("SELECT file FROM ingested_spills").fetchall()}
        handled: list[Path] = []
        for spans_file in sorted(directory.glob("*.spans.parquet")):
            events_file = spans_file.with_name(spans_file.name.replace(".spans.", ".events."))
            handled += [spans_file, events_file]
            if spans_file.name in done:
                continue
            spans = pq.read_table(spans_file)
            events = pq.read_table(events_file) if events_file.exists() else None
            _append(con, spans, events)
            con.execute(
                "INSERT INTO ingested_spills VALUES (?, ?, now())", [spans_file.name, spans.num_rows]
            )
            stats.add(recovered_spans=spans.num_rows)
            log.warning("shardscope: recovered %d spilled spans from %s", spans.num_rows, spans_file)
        return handled

    def warm_up(self) -> None:
        # The first tz-aware timestamp array loads Arrow's time-zone data (~0.2 s): do it now
        # rather than on the first batch.
        pa.array([0], pa.timestamp("us", tz="UTC"))

    def _session(self) -> WriterSession:
        if self._writer is None or self._writer.closed:
            self._writer = self.store.open_writer()
            # One DuckDB thread: the insert runs beside the traced program on another core
            # instead of taking both cores from it.
            self._writer.connection.execute("SET threads = 1")
        return self._writer

    @property
    def released(self) -> bool:
        """Whether the store is closed (not held between writes)."""
        return self._writer is None or self._writer.closed

    def idle(self) -> None:
        """Close the connection and release the store's write lock."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def close(self) -> None:
        self.idle()


def _append(con: duckdb.DuckDBPyConnection, spans: pa.Table, events: pa.Table | None) -> None:
    """Insert a batch and its typed rows (tracer/typed.py) inside the open transaction."""
    con.register("_shardscope_spans", spans)
    try:
        promoted = con.sql(PROMOTE_SPANS).to_arrow_table()
    finally:
        con.unregister("_shardscope_spans")
    con.register("_shardscope_promoted", promoted)
    try:
        con.execute("INSERT INTO spans BY NAME SELECT * FROM _shardscope_promoted")
        insert_typed(con, "_shardscope_promoted")
    finally:
        con.unregister("_shardscope_promoted")
    if events is not None and events.num_rows:
        con.register("_shardscope_events", events)
        try:
            con.execute("INSERT INTO span_events BY NAME SELECT * FROM _shardscope_events")
        finally:
            con.unregister("_shardscope_events")


class ExportFailed(RuntimeError):
    pass


class ExporterSink:
    """Any OpenTelemetry SpanExporter (OTLP, console) as a secondary sink."""

    primary = False

    def __init__(self, exporter: SpanExporter, name: str) -> None:
        self.exporter = exporter
        self.name = name

    def prepare(self, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        return list(spans)

    def write(self, prepared: list[ReadableSpan], stats: PipelineStats) -> None:
        result = self.exporter.export(prepared)
        if result is not SpanExportResult.SUCCESS:
            raise ExportFailed(f"{self.name} exporter returned {result.name}")
        stats.add(spans_written=len(prepared), batches=1)

    def spill(self, prepared: Any, stats: PipelineStats) -> str | None:
        return None

    def warm_up(self) -> None:
        return None

    def idle(self) -> None:
        return None

    def close(self) -> None:
        self.exporter.shutdown()
