"""A crash-proof boundary for the SQL console: user SQL runs in a worker process.

A DuckDB bug or a query we failed to foresee can abort a process (``CALL enable_logging(...)``
did, with exit 134, until the configuration was locked). The app's server must outlive any
query, so :class:`SqlWorker` keeps one child process (``python -m
shardscope.tracer.queries.sql_worker``) that runs :func:`~.user_sql.run_sql` and answers with
an Arrow IPC stream. If the child dies, the caller gets one QueryError line naming the exit
status and what DuckDB printed, and the next query starts a fresh child. A child that does
not answer within the lock timeout plus the query time limit (plus a grace) is killed; the
kernel releases its store locks with it.

Frames on the pipes: 4-byte big-endian length, then the payload. A request is JSON; an
answer is ``b"T"`` + Arrow IPC stream, or ``b"E"`` + JSON ``{"type", "message"}``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

import pyarrow as pa

from shardscope.config import errors
from shardscope.config.errors import QueryError, ShardscopeError
from shardscope.tracer.lake_store import open_source
from shardscope.tracer.queries.user_sql import SqlLimits, run_sql
from shardscope.tracer.store import Store

_HEADER = struct.Struct(">I")
_GRACE_S = 10.0


class SqlWorker:
    """One worker process for user SQL, started on first use and restarted after a crash.

    Thread-safe: queries from several app sessions take turns on the one worker."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()

    def run(self, path: str, sql: str, *, max_rows: int | None, limits: SqlLimits,
            lock_timeout: float) -> pa.Table:
        """``run_sql`` on the store at ``path``, in the worker; errors become ours again."""
        request = {"path": path, "sql": sql, "max_rows": max_rows, "timeout": limits.timeout,
                   "memory_limit": limits.memory_limit, "lock_timeout": lock_timeout}
        with self._lock:
            proc = self._alive()
            deadline = time.monotonic() + lock_timeout + limits.timeout + _GRACE_S
            try:
                assert proc.stdin is not None and proc.stdout is not None
                _write_frame(proc.stdin, json.dumps(request).encode())
                answer = _read_frame(proc.stdout, deadline)
            except (OSError, EOFError, TimeoutError) as exc:
                raise self._failed(exc) from None
        return _decode(answer)

    def close(self) -> None:
        """Stop the worker (it also stops on its own when this process exits: stdin closes)."""
        with self._lock:
            self._stop()

    def _alive(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "shardscope.tracer.queries.sql_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            close_fds=True, start_new_session=True,
        )
        return self._proc

    def _failed(self, exc: BaseException) -> QueryError:
        proc = self._proc
        assert proc is not None
        if isinstance(exc, TimeoutError):
            proc.kill()
        code = proc.wait(timeout=30)
        said = _last_line(self._stderr)
        self._stop()
        if isinstance(exc, TimeoutError):
            return QueryError("the query did not finish in time and its worker was stopped "
                              "(setting sql_timeout, SHARDSCOPE_SQL_TIMEOUT)")
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        return QueryError(f"the query crashed its worker process ({how}); the app is unaffected "
                          f"and the next query starts a new one" + (f". It said: {said}" if said else ""))

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _decode(answer: bytes) -> pa.Table:
    if answer[:1] == b"T":
        with pa.ipc.open_stream(answer[1:]) as stream:
            return stream.read_all()
    error = json.loads(answer[1:])
    kind = getattr(errors, str(error.get("type")), QueryError)
    if not (isinstance(kind, type) and issubclass(kind, ShardscopeError)):
        kind = QueryError
    raise kind(str(error.get("message")))


def _last_line(file: IO[bytes] | None) -> str:
    if file is None:
        return ""
    file.seek(0)
    lines = [ln.strip() for ln in file.read()[-4000:].decode(errors="replace").splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")[:300]


def _write_frame(pipe: IO[bytes], payload: bytes) -> None:
    pipe.write(_HEADER.pack(len(payload)) + payload)
    pipe.flush()


def _read_frame(pipe: IO[bytes], deadline: float | None = None) -> bytes:
    header = _read_exactly(pipe, _HEADER.size, deadline)
    return _read_exactly(pipe, _HEADER.unpack(header)[0], deadline)


def _read_exactly(pipe: IO[bytes], size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    fd = pipe.fileno()
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _answer(request: dict[str, Any], stores: dict[tuple[str, float], Store]) -> bytes:
    key = (str(request["path"]), float(request["lock_timeout"]))
    store = stores.get(key) or stores.setdefault(key, open_source(*key))
    limits = SqlLimits(float(request["timeout"]), str(request["memory_limit"]))
    try:
        table = run_sql(store, str(request["sql"]), max_rows=request["max_rows"], limits=limits)
    except ShardscopeError as exc:
        return b"E" + json.dumps({"type": type(exc).__name__, "message": str(exc)}).encode()
    except Exception as exc:
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return b"E" + json.dumps({"type": "QueryError", "message": message}).encode()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body: bytes = sink.getvalue().to_pybytes()
    return b"T" + body


def main() -> None:
    """The worker's loop: one request in, one answer out, until stdin closes."""
    stdin = sys.stdin.buffer
    # Answers go to a private copy of stdout; anything else printed (by DuckDB or Python)
    # goes to stderr, so nothing can corrupt a frame.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    stores: dict[tuple[str, float], Store] = {}
    while True:
        try:
            request = json.loads(_read_frame(stdin))
        except EOFError:
            return
        _write_frame(stdout, _answer(request, stores))


if __name__ == "__main__":
    main()
