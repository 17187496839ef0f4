"""The ``sql`` tool's long-lived, bounded query workers.

Starting a process per query (Python, then ``import duckdb``, then the connection) cost
0.6-1.8 s per call, where the query itself takes milliseconds. A :class:`QueryWorker` is one
child process (``python -c _WORKER``) that sets its limits once, imports DuckDB once, and then
answers one query per JSON line on its stdin, keeping a read-only connection to the last
dataset it was asked about. Its limits stay those of the per-query child it replaces:

- an address-space limit (``RLIMIT_AS``) of ``memory_mb`` plus what Python and DuckDB reserve
  before any query, and DuckDB's own ``memory_limit`` and spill cap of ``memory_mb``;
- a CPU budget per query: before each one the worker sets its soft ``RLIMIT_CPU`` to the
  CPU it has used so far plus the query's timeout and a grace, so one query cannot spend
  the time of the ones before it;
- a wall-clock deadline: DuckDB's interrupt after ``timeout_s`` inside the worker, and a
  kill of the worker's process group from outside if no answer came by the deadline.

A worker that crashed, was killed at its deadline, ran out of memory, or whose resident size
grew past ``memory_mb`` is not reused: the next query starts a fresh one. :class:`WorkerPool`
lends idle workers out per ``memory_mb``, so concurrent episodes each get their own, and keeps
at most ``MAX_IDLE`` of them; they also end on their own when this process exits (stdin
closes).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from shardscope.scaffolds.tools.sandbox import Completed, child_env

RUNTIME_ADDRESS_SPACE_MB = 768  # what the worker reserves before any query (VmPeak 766,060 kB)
STARTUP_GRACE_S = 20.0  # past a query's own timeout, for a new worker to start and answer
GRACE_S = 5.0  # past a query's own timeout, for a warm worker to answer
MAX_IDLE = 2  # idle workers kept per memory limit
_MAX_ANSWER_BYTES = 64 * 1024 * 1024

# The worker: limits, then DuckDB, then one JSON answer line per JSON request line.
_WORKER = r"""
import json, os, resource, sys, threading
spec = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (spec["address_space"], spec["address_space"]))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import duckdb

answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)  # whatever DuckDB or Python prints goes to stderr, never into an answer

def cell(value, limit):
    text = "NULL" if value is None else format(value, ".10g") if isinstance(value, float) else str(value)
    return text[:limit]

def tables(con):
    found = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
    ).fetchall()
    return [name for (name,) in found]

def resident_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

def cpu_budget(seconds):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))

opened = {}  # (path, inode, mtime, size) -> connection: the last dataset only

def connection(path):
    info = os.stat(path)
    key = (path, info.st_ino, info.st_mtime_ns, info.st_size)
    if key not in opened:
        for old in opened.values():
            old.close()
        opened.clear()
        con = duckdb.connect(path, read_only=True, config=spec["config"])
        con.execute("SET lock_configuration = true")
        opened[key] = con
    return opened[key]

for line in sys.stdin:
    job = json.loads(line)
    cpu_budget(job["timeout_s"] + spec["grace_s"])
    out = {}
    try:
        con = connection(job["path"])
    except (duckdb.Error, OSError) as exc:
        con, out = None, {"error": type(exc).__name__, "message": str(exc)}
    if con is not None:
        timer = threading.Timer(job["timeout_s"], con.interrupt)
        timer.start()
        try:
            cursor = con.execute(job["query"])
            columns = [d[0] for d in cursor.description or ()]
            rows = [[cell(v, job["cell_chars"]) for v in row]
                    for row in cursor.fetchmany(job["rows"])]
            out = {"columns": columns, "rows": rows}
        except duckdb.Error as exc:
            out = {"error": type(exc).__name__, "message": str(exc)}
            if isinstance(exc, duckdb.CatalogException):
                out["tables"] = tables(con)
        finally:
            timer.cancel()
    out["resident_kb"] = resident_kb()
    answers.write(json.dumps(out) + "\n")
    answers.flush()
"""


def connection_config(memory_mb: int, spill: Path) -> dict[str, Any]:
    """The DuckDB settings of the query's connection: locked down and bounded."""
    return {
        "enable_external_access": False,
        "threads": 1,
        "memory_limit": f"{memory_mb}MB",
        "temp_directory": str(spill),
        "max_temp_directory_size": f"{memory_mb}MB",
    }


class QueryWorker:
    """One bounded worker process; ``ask`` sends it a query and waits for its answer."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.answered = 0
        self.healthy = True
        # DuckDB allows file access inside its temp_directory: not the worker's cwd, then.
        self._scratch = tempfile.TemporaryDirectory(prefix="shardscope-sql-")
        spill = Path(self._scratch.name) / "spill"
        spec = {
            "address_space": (memory_mb + RUNTIME_ADDRESS_SPACE_MB) * 1024 * 1024,
            "config": connection_config(memory_mb, spill),
            "grace_s": STARTUP_GRACE_S,
        }
        self._stderr: IO[bytes] = tempfile.TemporaryFile(prefix="shardscope-sql-err-")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, json.dumps(spec)],
            cwd=self._scratch.name, env=child_env(self._scratch.name),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            close_fds=True, start_new_session=True,
        )  # fmt: skip
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self.healthy and self._proc.poll() is None

    def ask(self, job: dict[str, Any], timeout_s: float) -> Completed:
        """The worker's answer as a :class:`Completed` (output: its JSON line); after a
        crash or a missed deadline the worker is dead and the Completed says how it ended."""
        grace = GRACE_S if self.answered else STARTUP_GRACE_S
        deadline = time.monotonic() + timeout_s + grace
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(job).encode() + b"\n")
            self._proc.stdin.flush()
            line = self._read_line(deadline)
        except TimeoutError:
            self.close()
            return Completed(None, "", 0, True, None)
        except (OSError, EOFError):
            return self._ended()
        self.answered += 1
        try:
            answer = json.loads(line)
        except ValueError:
            self.close()
            return Completed(None, line.decode(errors="replace")[-300:], len(line), False, None)
        if answer.get("resident_kb", 0) > self.memory_mb * 1024 or answer.get("error") in (
            "OutOfMemoryException", "MemoryError",
        ):  # fmt: skip
            self.healthy = False
        return Completed(0, line.decode(), len(line), False, None)

    def _read_line(self, deadline: float) -> bytes:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise EOFError
            self._buffer += chunk
            if len(self._buffer) > _MAX_ANSWER_BYTES:
                raise EOFError
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _ended(self) -> Completed:
        """How the worker died: its exit status and the tail of what it printed."""
        code = self._proc.wait(timeout=30)
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 8192))
        said = self._stderr.read().decode("utf-8", errors="replace")
        self.close()
        sig = signal.Signals(-code).name if code < 0 else None
        return Completed(code, said, size, False, sig)

    def close(self) -> None:
        """Stop the worker and its process group; remove its scratch directory."""
        self.healthy = False
        proc = self._proc
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._stderr.close()
        self._scratch.cleanup()


class WorkerPool:
    """Idle workers by memory limit, lent out one query at a time (thread-safe)."""

    def __init__(self, start: Callable[[int], QueryWorker] = QueryWorker) -> None:
        self._start = start
        self._idle: dict[int, list[QueryWorker]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.started = 0

    def ask(self, memory_mb: int, job: dict[str, Any], timeout_s: float) -> Completed:
        worker = self._take(memory_mb)
        try:
            return worker.ask(job, timeout_s)
        finally:
            self._give(worker)

    def _take(self, memory_mb: int) -> QueryWorker:
        with self._lock:
            self._closed = False
            idle = self._idle.setdefault(memory_mb, [])
            while idle:
                worker = idle.pop()
                if worker.alive():
                    return worker
                worker.close()
            self.started += 1
        return self._start(memory_mb)

    def _give(self, worker: QueryWorker) -> None:
        with self._lock:
            idle = self._idle.setdefault(worker.memory_mb, [])
            if worker.alive() and len(idle) < MAX_IDLE and not self._closed:
                idle.append(worker)
                return
        worker.close()

    def close(self) -> None:
        """Stop every idle worker (a worker lent out is stopped when it comes back); a later
        query starts a new one."""
        with self._lock:
            self._closed = True
            workers = [w for idle in self._idle.values() for w in idle]
            self._idle.clear()
        for worker in workers:
            worker.close()
