"""The collector's write path: decoded requests → store transactions, acked when committed.

A request thread decodes its request in chunks (big requests only: see
``otlp_decode.CHUNK_ROWS``) and hands each to :class:`IngestWriter` as soon as it is ready;
one writer thread inserts the chunks inside an open transaction while the next are still
being decoded (DuckDB's insert releases the GIL), and commits once every request in the
transaction has handed over its last chunk (group commit: concurrent requests share one
commit, and the next requests are decoded while a transaction is written). Only then are the requests
answered, so an OTLP success means the data is on disk. The queue is bounded: when the store
is busy (another process holds it, or the disk is slow) a request that finds no room, or whose
commit does not come in time, is answered "retry later" instead of growing memory.

A span is identified by (trace_id, span_id): a retrying exporter re-sends spans it already
delivered when an acknowledgement was lost, and the second copy must not count tokens twice.
Duplicates are dropped within a request (by the decoder), and against the store and the open
transaction: candidates come from the in-memory index of stored span ids
(:mod:`shardscope.tracer.otlp_dedupe`) and are confirmed by a look-up that reads only stored
spans whose ``start_ns`` falls in the candidates' range (a re-sent span has the same start
time; DuckDB skips row groups by their min/max). Log records are identified by a hash of their
bytes and origin (``record_id``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shardscope.tracer import episodes
from shardscope.tracer.otlp_decode import Decoded
from shardscope.tracer.otlp_dedupe import KnownSpanIds, span_id_ints
from shardscope.tracer.pipeline import PipelineStats
from shardscope.tracer.sinks import HEARTBEAT_S, DuckDBSink, _append
from shardscope.tracer.store import Store, WriterSession

log = logging.getLogger("shardscope.collector")
LINGER_S = 1.0  # keep the store open this long after a write, for the next request ...
POLL_S = 0.05  # ... unless a reader or another writer is waiting (checked this often)
MAX_HOLD_S = 5.0  # and close it at least this often in a long burst all the same
STATS_EVERY_S = 1.0  # a writer_stats row per second of writing, not per request
MAX_TRANSACTION_ROWS = 50_000  # commit at least this often, even while requests keep coming
MAX_TRANSACTION_S = 0.5
CHECKPOINT_THRESHOLD = "256MB"  # WAL size that forces a checkpoint while the store is held


class Busy(RuntimeError):
    """The store cannot take the request now; the client should retry after ``retry_after``."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Written:
    """What one transaction inserted."""

    spans: int = 0
    events: int = 0
    logs: int = 0
    duplicates: int = 0
    traces: set[str] = field(default_factory=set)  # to settle before the commit
    dropped: dict[str, int] = field(
        default_factory=lambda: {"attributes": 0, "events": 0, "links": 0})


class CollectorSink(DuckDBSink):
    """The store sink, as steps of one transaction: ``begin``, ``insert`` chunks, ``commit``;
    with de-duplication against stored rows and the ``log_events`` table.

    Requests are small (an SDK exports 512 spans at a time), so reopening the store every
    half second as the in-process sink does would cost as much as the writes: the
    collector keeps it open while nobody else is waiting for it (``StoreLock.contended``)."""

    def __init__(self, store: Store, service_name: str = "shardscope") -> None:
        super().__init__(store, service_name)
        self.known = KnownSpanIds()
        self._known_session: WriterSession | None = None
        self._stats_at = 0.0
        self._recovered: list[Path] = []

    def release_after_write(self, session: WriterSession) -> bool:
        return (time.monotonic() - session.opened_at > MAX_HOLD_S
                or self.store.lock.contended())

    def _session(self) -> WriterSession:
        fresh = self._writer is None or self._writer.closed
        session = super()._session()
        if fresh:
            # DuckDB checkpoints inside a commit once the WAL passes 16 MB; with a commit per
            # request that made one commit in fifteen take up to a second (and the total
            # commit time 2.3x). The collector checkpoints when it closes the store instead
            # (at least every MAX_HOLD_S), as the in-process sink does every MAX_HOLD_S.
            session.connection.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        return session

    def begin(self, stats: PipelineStats) -> duckdb.DuckDBPyConnection:
        con = self._session().connection
        try:
            con.execute("BEGIN TRANSACTION")
            if not self._checked_spills:
                self._recovered = self._recover_spills(con, stats)
            if self._known_session is not self._writer:  # re-opened: did others write?
                self.known.catch_up(con)
                self._known_session = self._writer
        except BaseException:
            self.abort(con)
            raise
        return con

    def insert(self, con: duckdb.DuckDBPyConnection, chunk: Decoded, written: Written) -> None:
        """Insert one chunk in the open transaction, without rows the store already holds."""
        written.traces |= chunk.traces
        if chunk.spans is not None and chunk.spans.num_rows:
            spans, events = chunk.spans, chunk.events
            stored = self._stored(con, spans)
            if stored:
                spans, events = _without_spans(spans, events, stored)
            _append(con, spans, events)
            written.spans += spans.num_rows
            written.events += events.num_rows if events is not None else 0
            written.duplicates += chunk.spans.num_rows - spans.num_rows
            for key in written.dropped:
                written.dropped[key] += int(pc.sum(spans[f"dropped_{key}"]).as_py() or 0)
        if chunk.logs is not None and chunk.logs.num_rows:
            logs = chunk.logs
            stored_ids = _stored_log_ids(con, logs, (chunk.lo_ns, chunk.hi_ns))
            if stored_ids:
                logs = logs.filter(pc.invert(pc.is_in(logs["record_id"], pa.array(stored_ids))))
            if logs.num_rows:
                con.register("_shardscope_logs", logs)
                try:
                    con.execute("INSERT INTO log_events BY NAME SELECT * FROM _shardscope_logs")
                finally:
                    con.unregister("_shardscope_logs")
            written.logs += logs.num_rows
            written.duplicates += chunk.logs.num_rows - logs.num_rows

    def commit(self, con: duckdb.DuckDBPyConnection, stats: PipelineStats,
               written: Written) -> None:
        try:
            # Spans of other instrumentations join their episodes (tracer/episodes.py) in the
            # transaction that stores them: a reader never sees them half-placed.
            episodes.settle(con, written.traces)
            if time.monotonic() - self._stats_at >= STATS_EVERY_S:
                self._stats_at = time.monotonic()
                self._record_stats(con, stats, None)  # counters so far; the last at close
            con.execute("COMMIT")
        except BaseException:
            self.abort(con)
            raise
        stats.add(spans_written=written.spans, events_written=written.events, batches=1,
                  sdk_dropped_attributes=written.dropped["attributes"],
                  sdk_dropped_events=written.dropped["events"],
                  sdk_dropped_links=written.dropped["links"])
        self._checked_spills = True
        self._has_written = True
        for path in self._recovered:
            path.unlink(missing_ok=True)
        self._recovered = []
        session = self._writer
        if session is not None and self.release_after_write(session):
            self.idle()

    def abort(self, con: duckdb.DuckDBPyConnection) -> None:
        """Roll back and close: a failed connection is never reused."""
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        self.idle()

    def _stored(self, con: duckdb.DuckDBPyConnection, spans: pa.Table) -> set[tuple[str, str]]:
        """Keys of ``spans`` the store (or the open transaction) already holds."""
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
class _Ticket:
    """One request: its chunks still to commit, and whether it has handed over its last."""

    outstanding: int = 0
    finished: bool = False
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Chunk:
    ticket: _Ticket
    decoded: Decoded


class IngestWriter:
    """Bounded queue of decoded chunks + one writer thread committing them into the store."""

    def __init__(self, store: Store, *, max_pending_rows: int = 200_000,
                 service_name: str = "shardscope-collector") -> None:
        self.sink = CollectorSink(store, service_name)
        self.stats = PipelineStats()
        self.max_pending_rows = max_pending_rows
        self.duplicates = 0
        self.log_records = 0
        self._cond = threading.Condition()
        self._queue: list[_Chunk] = []
        self._pending_rows = 0
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="shardscope-collect-write",
                                        daemon=True)
        self._thread.start()

    @property
    def writer_id(self) -> str:
        return self.sink.writer_id

    def write(self, chunks: Iterable[Decoded], *, queue_wait_s: float,
              ack_timeout_s: float) -> None:
        """Store the chunks of one request (decoded lazily, as they are iterated); returns
        once all are committed. Raises :class:`Busy` when the store cannot take them in
        time (nothing is lost: the client retries, and what was written is not doubled)."""
        ticket = _Ticket()
        try:
            for decoded in chunks:
                if decoded.rows:
                    self._put(_Chunk(ticket, decoded), queue_wait_s)
        finally:
            with self._cond:
                ticket.finished = True
                self._settle(ticket)
                self._cond.notify_all()
        if not ticket.done.wait(ack_timeout_s):
            raise Busy(f"the store did not commit the data within {ack_timeout_s:g}s (it is "
                       "busy); retry later: what was already written is not stored twice", 5)
        if ticket.error is not None:
            raise Busy(f"writing to the store failed: {ticket.error}; retry later", 5)

    def _put(self, chunk: _Chunk, queue_wait_s: float) -> None:
        rows = chunk.decoded.rows
        with self._cond:
            deadline = time.monotonic() + queue_wait_s
            while (self._pending_rows and self._pending_rows + rows > self.max_pending_rows
                   and not self._closing):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Busy(f"the store is busy: {self._pending_rows:,} rows are waiting to be "
                               "written; retry later")
                self._cond.wait(remaining)
            if self._closing:
                raise Busy("the collector is shutting down", retry_after=5)
            self._queue.append(chunk)
            self._pending_rows += rows
            chunk.ticket.outstanding += 1
            self._cond.notify_all()

    @staticmethod
    def _settle(ticket: _Ticket) -> None:
        if ticket.finished and not ticket.outstanding:
            ticket.done.set()

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
                work = bool(self._queue)
                if not work and self._closing:
                    return
            if work:
                self._transaction()
                last_write, held = time.monotonic(), not self.sink.released
            elif held and (time.monotonic() - last_write >= LINGER_S
                           or self.sink.store.lock.contended()):
                self.sink.idle()  # readers get the store between bursts
                held = False
            elif not held:
                self._heartbeat()

    def _transaction(self) -> None:
        """Insert chunks as they come until every request in the transaction is complete
        (or it is big or old enough), then commit and answer those requests."""
        taken: list[_Chunk] = []
        written = Written()
        error: BaseException | None = None
        try:
            con = self.sink.begin(self.stats)
            started = time.monotonic()
            while True:
                chunks = self._next_chunks(taken, started, written)
                if chunks is None:
                    break
                for chunk in chunks:
                    taken.append(chunk)
                    self.sink.insert(con, chunk.decoded, written)
            self.sink.commit(con, self.stats, written)
        except Exception as exc:  # the store is unreachable: every request involved retries
            error = exc
            self.stats.add(write_errors=1)
            log.warning("collect: writing to the store failed: %s", exc)
        with self._cond:
            if error is None:
                self.duplicates += written.duplicates
                self.log_records += written.logs
            for chunk in taken:
                if error is not None:
                    chunk.ticket.error = error
                chunk.ticket.outstanding -= 1
                self._pending_rows -= chunk.decoded.rows
                self._settle(chunk.ticket)
            self._cond.notify_all()

    def _next_chunks(self, taken: list[_Chunk], started: float,
                     written: Written) -> list[_Chunk] | None:
        """The queued chunks to insert next, or None when the transaction should commit."""
        with self._cond:
            while True:
                if self._queue:
                    chunks, self._queue = self._queue, []
                    return chunks
                complete = all(chunk.ticket.finished for chunk in taken)
                if (complete or self._closing or written.spans + written.logs
                        >= MAX_TRANSACTION_ROWS or time.monotonic() - started > MAX_TRANSACTION_S):
                    return None
                self._cond.wait(POLL_S)

    def _heartbeat(self) -> None:
        try:
            self.sink.heartbeat(self.stats)
        except Exception as exc:  # the next write will tell
            log.debug("collect: heartbeat failed: %s", exc)
