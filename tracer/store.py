"""The DuckDB store: one file, many processes, no lock errors.

Writers (the span pipeline of every run process) and readers (the UI, ``shardscope query``,
analysis code) open the file only for the length of one write or one query, behind
:class:`shardscope.tracer.locking.StoreLock`. See the README's "Concurrency" section.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from shardscope import __version__
from shardscope.config.errors import StoreBusyError, StoreError, StoreNotFoundError
from shardscope.tracer.locking import StoreLock
from shardscope.tracer.schema import (
    SCHEMA_VERSION,
    VIEWS_HASH,
    Progress,
    check_readable,
    migrate,
    stored_version,
)
from shardscope.tracer.schema import _stored_views_hash as stored_views_hash

logger = logging.getLogger(__name__)

_FOREIGN_LOCK = "Could not set lock on file"
_SAME_PROCESS_CONFIG = "different configuration than existing connections"


class Store:
    """A shardscope store at ``path`` (a DuckDB file, created on first write)."""

    def __init__(self, path: str | Path, lock_timeout: float = 120.0,
                 progress: Progress | None = None) -> None:
        self.path = Path(path).expanduser().absolute()
        # What a migration reports its progress to (by default a bar on stderr).
        self.progress: Progress = progress or MigrationBar(self.path)
        self.lock = StoreLock(self.path, lock_timeout)
        self.lock_timeout = lock_timeout
        self._schema_current = False
        self._session = _Session()  # per thread: see session()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.is_file()

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection, held under the exclusive lock; closed on exit."""
        session = self.open_writer()
        try:
            yield session.connection
        finally:
            session.close()

    def open_writer(self) -> WriterSession:
        """Take the exclusive lock and open read-write; the caller must ``close()`` it."""
        self._ensure_directory()
        self._session.release()  # a session of this thread would hold the shared lock
        lock = self.lock.exclusive()
        lock.__enter__()
        try:
            con = self._connect(read_only=False)
        except BaseException:
            lock.__exit__(None, None, None)
            raise
        session = WriterSession(con, lock)
        try:
            if not self._schema_current:
                migrate(con, self.path, __version__, self.progress)
                self._schema_current = True
        except BaseException:
            session.close()
            raise
        return session

    @contextlib.contextmanager
    def reader(
        self, *, sandboxed: bool = False, memory_limit: str | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection under the shared lock.

        ``sandboxed`` also denies file access outside the store (COPY TO, ATTACH, read_csv)
        and locks the configuration (no SET, no ``enable_logging``), after setting
        ``memory_limit``: used for SQL typed by a user.
        """
        if not self.exists():
            raise StoreNotFoundError(
                f"no store at {self.path}: run `shardscope demo` (or `make demo`) to create one, "
                "or pass --db PATH"
            )
        if not self._schema_current:
            self.upgrade()
        if self._session.active and not sandboxed:
            cursor = self._session.connection(self).cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            return
        # Another configuration on the same file cannot share the session's database.
        self._session.release()
        with self.lock.shared():
            con = self._connect(read_only=True, sandboxed=sandboxed, memory_limit=memory_limit)
            try:
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Inside, every (not sandboxed) :meth:`reader` of this thread is a cursor on one
        read-only connection, opened under the shared lock by the first and closed on exit.

        What a page load of the app (or a command) reads through many query functions: each
        opening of the store costs about as much as a ``count(*)`` of a 1M-span store (DuckDB
        starts a database: ~15-20 ms CPU), and its first reads warm what the next reuse. The
        reads see one snapshot; writers of other processes wait until the session ends.
        Nested sessions are one session; a writer of this thread closes it first."""
        if self._session.active:
            yield
            return
        self._session.active = True
        try:
            yield
        finally:
            self._session.active = False
            self._session.release()

    def check_usable(self) -> None:
        """Before the first episode of a run: the path can hold a shardscope store (not a
        directory, not under a file) and what is there is one, of a version we can write."""
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory; name a file in it, e.g. "
                             f"--db {self.path / 'shardscope.duckdb'}")
        parent = next((p for p in self.path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise StoreError(f"store path {self.path} is under {parent}, which is a file, not a "
                             "directory; choose another --db")
        if not self.exists():
            return
        with self.lock.shared():
            con = self._connect(read_only=True)
            try:
                version = stored_version(con)
                tables = [r[0] for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = "
                    "current_database() ORDER BY 1 LIMIT 5").fetchall()]
            finally:
                con.close()
        check_readable(version, self.path)
        if version == 0 and tables:
            raise StoreError(f"{self.path} is a DuckDB database but not a shardscope store (it "
                             f"holds {', '.join(tables)}); choose another --db")

    def upgrade(self) -> None:
        """Check the schema version; migrate an older store, and replace views written by
        another shardscope version (both need write access, for a moment)."""
        with self.lock.shared():
            con = self._connect(read_only=True)
            try:
                version = stored_version(con)
                views_current = version == 0 or stored_views_hash(con) == VIEWS_HASH
            finally:
                con.close()
        check_readable(version, self.path)
        if version == 0:
            raise StoreNotFoundError(
                f"{self.path} is a DuckDB file but holds no shardscope data yet: run "
                "`shardscope demo` or point --db at a shardscope store"
            )
        if version < SCHEMA_VERSION:
            with self.writer():
                pass
        elif not views_current:
            self._refresh_views()
        self._schema_current = True

    def _refresh_views(self) -> None:
        # Views are code: a store written by another version gets this version's views. A
        # store we may not write (read-only file or directory) keeps the ones it has.
        try:
            with self.writer():
                pass
        except StoreError as exc:
            logger.warning("store %s keeps the views of the version that wrote it: %s",
                           self.path, exc)

    def _ensure_directory(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory for store {self.path}: {exc.strerror}"
            ) from None

    def _connect(
        self, *, read_only: bool, sandboxed: bool = False, memory_limit: str | None = None
    ) -> duckdb.DuckDBPyConnection:
        config: dict[str, str | bool | int | float | list[str]] = (
            {"enable_external_access": "false"} if sandboxed else {})
        if sandboxed and memory_limit:
            config["memory_limit"] = memory_limit
        con = self._open(read_only, config)
        if sandboxed:
            _lock_configuration(con)
        return con

    def _open(self, read_only: bool, config: dict[str, str | bool | int | float | list[str]]
              ) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except duckdb.Error as exc:
                message = str(exc)
                retryable = _FOREIGN_LOCK in message or _SAME_PROCESS_CONFIG in message
                if not retryable:
                    raise _store_error(self.path, exc, read_only) from None
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"store {self.path} is locked by another program (not shardscope) for "
                        f"over {self.lock_timeout:.0f}s; close it, or open it read-only "
                        f"(duckdb -readonly). DuckDB said: {message.splitlines()[0]}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)


class _Session(threading.local):
    """One thread's :meth:`Store.session`: whether one is open, and its connection."""

    active = False
    opened: tuple[duckdb.DuckDBPyConnection, contextlib.AbstractContextManager[None]] | None = None

    def connection(self, store: Store) -> duckdb.DuckDBPyConnection:
        if self.opened is None:
            lock = store.lock.shared()
            lock.__enter__()
            try:
                con = store._connect(read_only=True)
            except BaseException:
                lock.__exit__(None, None, None)
                raise
            self.opened = (con, lock)
        return self.opened[0]

    def release(self) -> None:
        opened, self.opened = self.opened, None
        if opened is not None:
            try:
                opened[0].close()
            finally:
                opened[1].__exit__(None, None, None)


class MigrationBar:
    """A progress bar on stderr while an old store is migrated in place (rich; drawn only
    when there are spans to back-fill)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if done >= total:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            logger.warning("migrating store %s to schema v%d: deriving typed rows of %d spans",
                           self.path, SCHEMA_VERSION, total)
            self._bar = Progress("migrating store", BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True))
            self._task = self._bar.add_task("spans", total=total)
            self._bar.start()
        self._bar.update(self._task, completed=done)
        if done >= total:
            self._bar.stop()
            self._bar = None


class WriterSession:
    """An open read-write connection and the exclusive lock it holds."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, lock: Any) -> None:
        self.connection = connection
        self._lock = lock
        self.opened_at = time.monotonic()
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.connection.close()
        finally:
            self._lock.__exit__(None, None, None)


def _lock_configuration(con: duckdb.DuckDBPyConnection) -> None:
    """Lock the settings of a user's connection, last, so nothing the query says (SET,
    ``CALL enable_logging``, which aborts the process) can change them."""
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise


def _store_error(path: Path, exc: duckdb.Error, read_only: bool) -> StoreError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "not a valid DuckDB database" in first or "Unknown file type" in first:
        return StoreError(f"{path} is not a DuckDB database file ({first})")
    if "Permission denied" in first or "Read-only file system" in first:
        action = "read" if read_only else "write"
        return StoreError(f"cannot {action} store {path}: permission denied; choose another --db")
    return StoreError(f"cannot open store {path}: {first}")
