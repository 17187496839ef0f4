"""A readers-writer lock between processes (and threads) sharing one DuckDB file.

DuckDB lets one process hold a file read-write, or several hold it read-only, never both;
a conflicting open fails at once with "Could not set lock on file". Every shardscope process
therefore takes this lock before it opens the store, holds it only for the length of one
write (milliseconds) or one query, and so never meets DuckDB's own lock error.

Two ``flock`` files make it writer-preferring: a writer first takes ``<db>.wlock``
exclusively, which stops new readers at the door, then waits for ``<db>.lock``. A reader
passes through ``<db>.wlock`` shared and then holds ``<db>.lock`` shared. ``flock`` locks
belong to an open file description, so two threads of one process exclude each other too,
and the kernel releases them when a process dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from shardscope.config.errors import StoreBusyError


class StoreLock:
    """``shared()`` for readers, ``exclusive()`` for writers, both with a timeout in seconds."""

    def __init__(self, db_path: Path, timeout: float = 120.0) -> None:
        self.db_path = Path(db_path)
        self.timeout = timeout
        self.lock_path = self.db_path.with_name(self.db_path.name + ".lock")
        self.door_path = self.db_path.with_name(self.db_path.name + ".wlock")

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        with self._held(self.door_path, fcntl.LOCK_SH, deadline, "reader"):
            main = self._acquire(self.lock_path, fcntl.LOCK_SH, deadline, "reader")
        try:
            yield
        finally:
            _release(main)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        with self._held(self.door_path, fcntl.LOCK_EX, deadline, "writer"):
            main = self._acquire(self.lock_path, fcntl.LOCK_EX, deadline, "writer")
        try:
            yield
        finally:
            _release(main)

    def contended(self) -> bool:
        """Whether another reader or writer is waiting for the store right now.

        A waiter holds the door while it polls for the main lock (readers shared, writers
        exclusive), so a writer holding the store can ask, cheaply, whether to let go."""
        fd = _open_lock_file(self.door_path)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    @contextlib.contextmanager
    def _held(self, path: Path, mode: int, deadline: float, role: str) -> Iterator[None]:
        fd = self._acquire(path, mode, deadline, role)
        try:
            yield
        finally:
            _release(fd)

    def _acquire(self, path: Path, mode: int, deadline: float, role: str) -> int | None:
        fd = _open_lock_file(path)
        if fd is None:
            return None  # read-only directory: nobody can write here, so nothing to exclude
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreBusyError(
                        f"store {self.db_path} stayed busy for {self.timeout:.0f}s: another "
                        f"shardscope process holds it; as {role} we gave up. Try again, or raise "
                        "SHARDSCOPE_LOCK_TIMEOUT"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)


class RunLock:
    """Held by the one process running (or resuming) a run: ``<db>.run-<id>.lock`` holds
    that process's pid and host, so a second one is refused with a message naming it.

    The file is removed on release. A process that opened it just before then holds a lock
    on a file that is gone, so after taking the lock each checks that the path still names
    the file it locked, and starts over if not."""

    def __init__(self, db_path: Path, run_id: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)
        self.path = Path(db_path).with_name(f"{Path(db_path).name}.run-{safe}.lock")
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise StoreBusyError(
                    f"run {self.run_id} is already being run by {holder}: running it twice "
                    "would run its tasks twice. Wait for that process to finish, or stop it first"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # released and removed by its last holder meanwhile: start over
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # while still held: nobody else can be holding it
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _open_lock_file(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
    except FileNotFoundError:
        return None


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the last descriptor releases the flock
