"""The collector's write path: decoded requests → one store transaction per group, acked when
committed.

Request threads hand their rows to :class:`IngestWriter` and wait. One writer thread takes
every request that is waiting (group commit: four concurrent senders cost one transaction,
not four), drops rows the store already holds, appends the rest with the Arrow path the
in-process sink uses, commits, and only then releases the requests, so an OTLP success means
the data is on disk. The queue is bounded: when the store is busy (another process holds it,
or the disk is slow) a request that finds no room, or whose commit does not come in time, is
answered "retry later" instead of growing memory without bound.

A span is identified by (trace_id, span_id): a retrying exporter re-sends spans it already
delivered when an acknowledgement was lost, and the second copy must not count tokens twice.
Duplicates are dropped within a request, across the requests of a group, and against the
store: candidates come from the in-memory index of stored span ids
(:mod:`shardscope.tracer.otlp_dedupe`) and are confirmed by a look-up that reads only stored
spans whose ``start_ns`` falls in the candidates' range (a re-sent span has the same start
time; DuckDB skips row groups by their min/max). Log
records are identified by a hash of their bytes and origin (``record_id``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shardscope.tracer.otlp_decode import EVENT_SCHEMA, SPAN_SCHEMA, Decoded
from shardscope.tracer.otlp_dedupe import KnownSpanIds, span_id_ints
from shardscope.tracer.pipeline import PipelineStats
from shardscope.tracer.sinks import HEARTBEAT_S, DuckDBSink, PreparedBatch, _append
from shardscope.tracer.store import Store, WriterSession

log = logging.getLogger("shardscope.collector")
LINGER_S = 1.0  # keep the store open this long after a write, for the next request ...
POLL_S = 0.05  # ... unless a reader or another writer is waiting (checked this often)
MAX_HOLD_S = 5.0  # and close it at least this often in a long burst all the same
STATS_EVERY_S = 1.0  # a writer_stats row per second of writing, not per request
MAX_GROUP_ROWS = 50_000


class Busy(RuntimeError):
    """The store cannot take the request now; the client should retry after ``retry_after``."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class CollectedBatch(PreparedBatch):
    """A group of requests' rows, with the time range of its log records (for their
    de-duplication) and a counter of the duplicates dropped."""

    logs: pa.Table | None = None
    log_range: tuple[int, int] = (0, 0)
    duplicates: list[int] = field(default_factory=lambda: [0])


class CollectorSink(DuckDBSink):
    """The store sink, plus de-duplication against stored rows and the ``log_events`` table.

    Requests are small (an SDK exports 512 spans at a time), so reopening the store every
    half second as the in-process sink does would cost as much as the writes: the
    collector keeps it open while nobody else is waiting for it (``StoreLock.contended``)."""

    _stats_at = 0.0

    def __init__(self, store: Store, service_name: str = "shardscope") -> None:
        super().__init__(store, service_name)
        self.known = KnownSpanIds()
        self._known_session: WriterSession | None = None

    def release_after_write(self, session: WriterSession) -> bool:
        return (time.monotonic() - session.opened_at > MAX_HOLD_S
                or self.store.lock.contended())

    def _record_stats(self, con: duckdb.DuckDBPyConnection, stats: PipelineStats,
                      batch: PreparedBatch | None) -> None:
        now = time.monotonic()
        if batch is None or now - self._stats_at >= STATS_EVERY_S:
            self._stats_at = now
            super()._record_stats(con, stats, batch)

    def append(self, con: duckdb.DuckDBPyConnection, prepared: PreparedBatch) -> PreparedBatch:
        assert isinstance(prepared, CollectedBatch)
        spans, events = prepared.spans, prepared.events
        dropped = 0
        if spans.num_rows:
            stored = self._stored(con, spans)
            if stored:
                spans, events = _without_spans(spans, events, stored)
                dropped += prepared.spans.num_rows - spans.num_rows
            _append(con, spans, events)
        logs = prepared.logs
        if logs is not None and logs.num_rows:
            stored_ids = _stored_log_ids(con, logs, prepared.log_range)
            if stored_ids:
                logs = logs.filter(pc.invert(pc.is_in(logs["record_id"], pa.array(stored_ids))))
                dropped += prepared.logs.num_rows - logs.num_rows
            if logs.num_rows:
                con.register("_shardscope_logs", logs)
                try:
                    con.execute("INSERT INTO log_events BY NAME SELECT * FROM _shardscope_logs")
                finally:
                    con.unregister("_shardscope_logs")
        prepared.duplicates[0] += dropped
        return CollectedBatch(spans, events, prepared.dropped, logs)

    def _stored(self, con: duckdb.DuckDBPyConnection, spans: pa.Table) -> set[tuple[str, str]]:
        """Keys of ``spans`` the store already holds (see otlp_dedupe)."""
        if self._known_session is not self._writer:  # the store was re-opened: others wrote?
            self.known.catch_up(con)
            self._known_session = self._writer
        ids = span_id_ints(spans["span_id"].to_pylist())
        hits = self.known.hits(ids)
        self.known.add(ids)
        if not hits:
            return set()
        candidates = spans.take(hits)
        bounds = pc.min_max(candidates["start_ns"]).as_py()
        return _stored_span_keys(con, candidates, (bounds["min"], bounds["max"]))


def _stored_span_keys(
    con: duckdb.DuckDBPyConnection, spans: pa.Table, span_range: tuple[int, int]
) -> set[tuple[str, str]]:
    con.register("_shardscope_keys", spans.select(["trace_id", "span_id"]))
    try:
        rows = con.execute(
            "SELECT s.trace_id, s.span_id FROM spans s SEMI JOIN _shardscope_keys k "
            "ON s.span_id = k.span_id AND s.trace_id = k.trace_id "
            "WHERE s.start_ns BETWEEN ? AND ?", list(span_range),
        ).fetchall()
    finally:
        con.unregister("_shardscope_keys")
    return {(r[0], r[1]) for r in rows}


def _stored_log_ids(
    con: duckdb.DuckDBPyConnection, logs: pa.Table, log_range: tuple[int, int]
) -> list[str]:
    con.register("_shardscope_ids", logs.select(["record_id"]))
    try:
        rows = con.execute(
            "SELECT record_id FROM log_events WHERE time_ns BETWEEN ? AND ? "
            "AND record_id IN (SELECT record_id FROM _shardscope_ids)", list(log_range),
        ).fetchall()
    finally:
        con.unregister("_shardscope_ids")
    return [r[0] for r in rows]


def _without_spans(
    spans: pa.Table, events: pa.Table, stored: set[tuple[str, str]]
) -> tuple[pa.Table, pa.Table]:
    def keep(table: pa.Table) -> pa.Array:
        keys = zip(table["trace_id"].to_pylist(), table["span_id"].to_pylist(), strict=True)
        return pa.array([key not in stored for key in keys], pa.bool_())

    return spans.filter(keep(spans)), events.filter(keep(events)) if events.num_rows else events


@dataclass
class _Pending:
    decoded: Decoded
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class IngestWriter:
    """Bounded queue + one writer thread doing group commits into the store."""

    def __init__(self, store: Store, *, max_pending_rows: int = 200_000,
                 service_name: str = "shardscope-collector") -> None:
        self.sink = CollectorSink(store, service_name)
        self.stats = PipelineStats()
        self.max_pending_rows = max_pending_rows
        self.duplicates = 0
        self.log_records = 0
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._pending_rows = 0
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="shardscope-collect-write",
                                        daemon=True)
        self._thread.start()

    @property
    def writer_id(self) -> str:
        return self.sink.writer_id

    def write(self, decoded: Decoded, *, queue_wait_s: float, ack_timeout_s: float) -> None:
        """Store ``decoded``; returns once committed. Raises :class:`Busy` when the store
        cannot take it in time (nothing is lost: the client retries, duplicates are dropped)."""
        if not decoded.rows:
            return
        pending = _Pending(decoded)
        with self._cond:
            deadline = time.monotonic() + queue_wait_s
            while (self._pending_rows and self._pending_rows + decoded.rows > self.max_pending_rows
                   and not self._closing):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Busy(f"the store is busy: {self._pending_rows:,} rows are waiting to be "
                               "written; retry later")
                self._cond.wait(remaining)
            if self._closing:
                raise Busy("the collector is shutting down", retry_after=5)
            self._queue.append(pending)
            self._pending_rows += decoded.rows
            self._cond.notify_all()
        if not pending.done.wait(ack_timeout_s):
            raise Busy(f"the store did not commit the data within {ack_timeout_s:g}s (it is "
                       "busy); retry later: what was already written is not stored twice", 5)
        if pending.error is not None:
            raise Busy(f"writing to the store failed: {pending.error}; retry later", 5)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then release the store."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        try:
            self._heartbeat()  # the final counters, in writer_stats
        finally:
            self.sink.close()

    # --- writer thread ------------------------------------------------------------------
    def _loop(self) -> None:
        self.sink.warm_up()
        last_write = time.monotonic()
        held = False
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(POLL_S if held else HEARTBEAT_S)
                group = self._take()
                if not group and self._closing:
                    return
            if group:
                self._write(group)
                last_write, held = time.monotonic(), not self.sink.released
            elif held and (time.monotonic() - last_write >= LINGER_S
                           or self.sink.store.lock.contended()):
                self.sink.idle()  # readers get the store between bursts
                held = False
            elif not held:
                self._heartbeat()

    def _take(self) -> list[_Pending]:
        group, rows = [], 0
        while self._queue and (not group or rows + self._queue[0].decoded.rows <= MAX_GROUP_ROWS):
            item = self._queue.pop(0)
            group.append(item)
            rows += item.decoded.rows
        return group

    def _write(self, group: list[_Pending]) -> None:
        batch = _group_batch([p.decoded for p in group])
        try:
            self.sink.write(batch, self.stats)
        except Exception as exc:  # the store is unreachable: every request of the group retries
            self.stats.add(write_errors=1)
            log.warning("collect: writing %d requests to the store failed: %s", len(group), exc)
            for pending in group:
                pending.error = exc
        else:
            with self._cond:
                self.duplicates += batch.duplicates[0]
                self.log_records += batch.logs.num_rows if batch.logs is not None else 0
        finally:
            with self._cond:
                self._pending_rows -= sum(p.decoded.rows for p in group)
                self._cond.notify_all()
            for pending in group:
                pending.done.set()

    def _heartbeat(self) -> None:
        try:
            self.sink.heartbeat(self.stats)
        except Exception as exc:  # the next write will tell
            log.debug("collect: heartbeat failed: %s", exc)


def _group_batch(items: list[Decoded]) -> CollectedBatch:
    """One batch of a group's rows, without a span or record that an earlier request of the
    group already carried."""
    span_items = [d for d in items if d.spans is not None]
    log_items = [d for d in items if d.logs is not None]
    spans = _concat([_unique(span_items, i, "spans") for i in range(len(span_items))], None)
    events = _concat([_unique(span_items, i, "events") for i in range(len(span_items))],
                     EVENT_SCHEMA)
    logs = _concat([_unique(log_items, i, "logs") for i in range(len(log_items))], None)
    duplicates = sum(d.rows for d in items) - (spans.num_rows if spans is not None else 0) - (
        logs.num_rows if logs is not None else 0)
    dropped = {"attributes": 0, "events": 0, "links": 0}
    if spans is not None and spans.num_rows:
        for key in dropped:
            dropped[key] = int(pc.sum(spans[f"dropped_{key}"]).as_py() or 0)
    return CollectedBatch(
        spans if spans is not None else SPAN_SCHEMA.empty_table(), events, dropped, logs,
        log_range=_range(log_items), duplicates=[duplicates],
    )


def _unique(items: list[Decoded], index: int, which: str) -> pa.Table:
    """A table of ``items[index]`` without the rows an earlier request of ``items`` carried."""
    item = items[index]
    table: pa.Table = getattr(item, which)
    seen = {key for other in items[:index] for key in other.keys}
    if not seen or not any(key in seen for key in item.keys):
        return table
    if which == "logs":
        keys: Any = table["record_id"].to_pylist()
    else:
        keys = zip(table["trace_id"].to_pylist(), table["span_id"].to_pylist(), strict=True)
    return table.filter(pa.array([key not in seen for key in keys], pa.bool_()))


def _concat(tables: list[pa.Table], schema: pa.Schema | None) -> Any:
    if not tables:
        return schema.empty_table() if schema is not None else None
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _range(items: list[Decoded]) -> tuple[int, int]:
    if not items:
        return (0, 0)
    return (min(d.lo_ns for d in items), max(d.hi_ns for d in items))
