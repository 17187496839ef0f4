"""A span processor that never drops a span silently.

The SDK's ``BatchSpanProcessor`` drops spans when its queue is full (DESIGN.md measured 9,728
of 20,000 arriving). This processor keeps a bounded buffer instead and, when it is full,
makes the producer wait (backpressure), counting the waits and the time waited. A background
thread hands batches to a :class:`Sink` every ``flush_interval`` seconds (so a live run is
visible within about a second), when a batch is large, on ``force_flush`` and at shutdown.

A sink that fails is retried with backoff. The primary sink (the store) keeps a failed batch
until it is written; at shutdown, what still cannot be written is spilled to a file the next
writer ingests. A secondary sink (OTLP, console) gives up on a batch after a few attempts and
counts it as dropped. Every count lands in the store's ``writer_stats`` table and in
``shardscope status``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

log = logging.getLogger("shardscope.tracer")


@dataclass
class PipelineStats:
    """Counters of one processor; read them with :meth:`snapshot`."""

    spans_received: int = 0
    spans_written: int = 0
    events_written: int = 0
    batches: int = 0
    backpressure_waits: int = 0
    backpressure_seconds: float = 0.0
    write_errors: int = 0
    spilled_spans: int = 0
    recovered_spans: int = 0
    lost_spans: int = 0
    dropped_spans: int = 0  # secondary sinks only: given up after repeated failures
    events_dropped: int = 0  # OTLP only: token events left off to bound requests (counted)
    late_spans: int = 0  # ended after shutdown: exported synchronously
    sdk_dropped_attributes: int = 0
    sdk_dropped_events: int = 0
    sdk_dropped_links: int = 0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **increments: Any) -> None:
        with self._lock:
            for key, value in increments.items():
                setattr(self, key, getattr(self, key) + value)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}


class Sink(Protocol):
    """Where batches of finished spans go."""

    name: str
    primary: bool  # True: never give up on a batch; False: drop (counted) after retries

    def prepare(self, spans: Sequence[ReadableSpan]) -> Any:
        """Convert spans once (pure); the result is what ``write`` retries with."""

    def write(self, prepared: Any, stats: PipelineStats) -> None:
        """Deliver a prepared batch; raise on failure."""

    # Optional: a sink with ``heartbeat_interval`` (seconds, or None) gets ``heartbeat(stats)``
    # after that long without a batch, to show its process is alive (see DuckDBSink).

    def spill(self, prepared: Any, stats: PipelineStats) -> str | None:
        """Last resort at shutdown: persist the batch elsewhere; return where, or None."""

    def warm_up(self) -> None:
        """One-time set-up on the exporter thread, before the first batch arrives."""

    def idle(self) -> None:
        """Nothing is waiting: release what a burst held (e.g. the store's write lock)."""

    def close(self) -> None: ...


class ReliableSpanProcessor(SpanProcessor):
    """Bounded, backpressured, never-silently-dropping span processor for one sink.

    Two threads form a pipeline: one converts batches (``sink.prepare``, Python), the other
    writes them (``sink.write``; DuckDB's insert runs without the GIL), so conversion of the
    next batch overlaps the write of the previous one. Spans are delivered in order; a
    flush waits until every span that ended before it has been delivered (or spilled).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        max_buffered: int = 50_000,
        flush_interval: float = 0.5,
        max_batch: int = 20_000,
        wake_at: int = 5_000,
        shutdown_timeout: float = 30.0,
        strict: bool | None = None,
    ) -> None:
        self.sink = sink
        self.stats = PipelineStats()
        self._max_buffered = max_buffered
        self._max_batch = max(1, min(max_batch, max_buffered))
        # A burst is written while it is still being produced, not all at once at the end.
        self._wake_at = max(1, min(wake_at, self._max_batch))
        self._flush_interval = flush_interval
        self._shutdown_timeout = shutdown_timeout
        self._strict = _strict_from_env() if strict is None else strict
        self._cond = threading.Condition()
        self._buffer: list[ReadableSpan] = []
        self._appended = 0  # spans ever accepted
        self._taken = 0  # spans handed to the converter
        self._done = 0  # spans delivered, spilled or counted lost
        self._flush_target = 0  # flushes wait for _done to reach this
        self._prepared: list[tuple[Any, int]] = []  # converted batches awaiting the writer
        self._converter_finished = False
        self._closing = False
        self._closed = False
        self._deadline: float | None = None
        self._first_error: BaseException | None = None
        self._threads = [
            threading.Thread(target=target, name=f"shardscope-{sink.name}-{role}", daemon=True)
            for role, target in (("convert", self._convert_loop), ("write", self._write_loop))
        ]
        for thread in self._threads:
            thread.start()

    # --- producer side -----------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        cond = self._cond
        with cond:
            if not self._closed:
                if (
                    self._appended - self._done >= self._max_buffered
                    and threading.current_thread() not in self._threads
                ):
                    self._wait_for_room()
                self._buffer.append(span)
                self._appended += 1
                if len(self._buffer) == self._wake_at:
                    cond.notify_all()
                return
        self._export_late(span)

    def _wait_for_room(self) -> None:
        started = time.monotonic()
        self._cond.notify_all()
        while self._appended - self._done >= self._max_buffered and not self._closed:
            self._cond.wait(0.05)
        self.stats.add(backpressure_waits=1, backpressure_seconds=time.monotonic() - started)

    def _export_late(self, span: ReadableSpan) -> None:
        # A span that ends after shutdown (e.g. from a straggling thread) is still delivered.
        self.stats.add(late_spans=1, spans_received=1)
        prepared = self._prepare([span])
        if prepared is not None:
            self._deliver(prepared, 1)
        self._idle()

    # --- flushing ---------------------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            if self._closed:
                return True
            target = self._appended
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        self._raise_if_strict()
        return True

    def shutdown(self) -> None:
        with self._cond:
            if self._closed or self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + self._shutdown_timeout
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(self._shutdown_timeout + 5)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        try:
            self.sink.close()
        finally:
            self._report_losses()
        self._raise_if_strict()

    def _raise_if_strict(self) -> None:
        if self._strict and self._first_error is not None:
            error, self._first_error = self._first_error, None
            raise RuntimeError(f"span sink {self.sink.name!r} failed: {error!r}") from error

    # --- background threads -----------------------------------------------------------
    def _convert_loop(self) -> None:
        self._warm_up()
        cond = self._cond
        while True:
            with cond:
                cond.wait_for(self._converter_should_wake, timeout=self._flush_interval)
                # One prepared batch may wait for the writer while the next is converted.
                cond.wait_for(lambda: len(self._prepared) < 2)
                batch = self._buffer[: self._max_batch]
                del self._buffer[: self._max_batch]
                self._taken += len(batch)
                finished = self._closing and not self._buffer
            if batch:
                self.stats.add(spans_received=len(batch))
                prepared = self._prepare(batch)
                with cond:
                    if prepared is None:
                        self._done += len(batch)  # counted as lost by _prepare
                    else:
                        self._prepared.append((prepared, len(batch)))
                    cond.notify_all()
            if finished:
                with cond:
                    self._converter_finished = True
                    cond.notify_all()
                return

    def _converter_should_wake(self) -> bool:
        return (
            len(self._buffer) >= self._wake_at
            or self._flush_target > self._taken
            or self._closing
        )

    def _write_loop(self) -> None:
        cond = self._cond
        beat = getattr(self.sink, "heartbeat_interval", None)
        while True:
            with cond:
                woke = cond.wait_for(lambda: self._prepared or self._converter_finished, beat)
                if woke and not self._prepared:
                    break  # converter finished and nothing is left
                batch = self._prepared.pop(0) if woke else None
                cond.notify_all()
            if batch is None:
                self._heartbeat()
                continue
            prepared, count = batch
            self._deliver(prepared, count)
            with cond:
                self._done += count
                idle = not self._prepared and not self._buffer
                cond.notify_all()
            if idle:
                self._idle()
        self._idle()

    def _warm_up(self) -> None:
        try:
            self.sink.warm_up()
        except Exception as exc:
            self._record_error(exc)

    def _heartbeat(self) -> None:
        try:
            self.sink.heartbeat(self.stats)  # type: ignore[attr-defined]
        except Exception as exc:  # the store is busy or gone: the next batch will tell
            self._record_error(exc)
            log.warning("shardscope: heartbeat to %s failed: %s", self.sink.name, exc)

    def _idle(self) -> None:
        try:
            self.sink.idle()
        except Exception as exc:  # closing a connection failed: note it, carry on
            self._record_error(exc)

    def _prepare(self, batch: list[ReadableSpan]) -> Any | None:
        try:
            return self.sink.prepare(batch)
        except Exception as exc:  # a bug in conversion: never loop on it
            self._record_error(exc)
            self.stats.add(lost_spans=len(batch))
            log.exception("shardscope: could not convert %d spans for %s", len(batch), self.sink.name)
            return None

    def _deliver(self, prepared: Any, count: int) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.sink.write(prepared, self.stats)
                return
            except Exception as exc:
                self._record_error(exc)
                if attempt == 1 or attempt % 20 == 0:
                    log.warning(
                        "shardscope: writing %d spans to %s failed (attempt %d): %s",
                        count, self.sink.name, attempt, exc,
                    )
                if not self.sink.primary and attempt >= 3:
                    self.stats.add(dropped_spans=count)
                    log.error("shardscope: %s gave up on %d spans", self.sink.name, count)
                    return
                deadline = self._deadline if self._closing or self._closed else None
                if deadline is not None and time.monotonic() >= deadline:
                    self._spill(prepared, count)
                    return
                time.sleep(min(0.05 * 2**attempt, 2.0))

    def _spill(self, prepared: Any, count: int) -> bool:
        try:
            where = self.sink.spill(prepared, self.stats)
        except Exception as exc:
            self._record_error(exc)
            where = None
        if where:
            self.stats.add(spilled_spans=count)
            log.error(
                "shardscope: %d spans could not reach %s; saved to %s, ingested by the next "
                "writer", count, self.sink.name, where,
            )
            return True
        self.stats.add(lost_spans=count)
        log.error("shardscope: LOST %d spans: %s unreachable and spill failed", count, self.sink.name)
        return False

    def _record_error(self, exc: BaseException) -> None:
        self.stats.add(write_errors=1)
        with self.stats._lock:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self._first_error is None:
            self._first_error = exc

    def _report_losses(self) -> None:
        snap = self.stats.snapshot()
        if snap["lost_spans"] or snap["dropped_spans"]:
            log.error(
                "shardscope: %s lost %d and dropped %d spans (see `shardscope status`)",
                self.sink.name, snap["lost_spans"], snap["dropped_spans"],
            )


def _strict_from_env() -> bool:
    return os.environ.get("SHARDSCOPE_STRICT_TRACING", "").lower() in {"1", "true", "yes"}
