"""A Parquet lake read as a store: an in-memory DuckDB database whose stored tables are views
over the lake's files (``read_parquet``) and whose views are the store's own SQL
(``tracer.schema.VIEWS``), so every query, page and comparison runs on either unchanged.

Each connection sees the files that were whole when it was opened (see docs/lake.md,
"What readers see"). Files that cannot be read as the table they sit in (foreign, corrupt,
cut short) are left out, logged once, and listed in the ``lake_skipped_files`` table and in
``shardscope status``; nothing else is lost.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from shardscope import __version__
from shardscope.config.errors import StoreError, StoreNotFoundError, StoreVersionError
from shardscope.tracer.lake import MARKER, LakeScan, LakeScanner, looks_like_lake
from shardscope.tracer.schema import SCHEMA_VERSION, migrate
from shardscope.tracer.store import Store, WriterSession

SKIPPED_TABLE = "lake_skipped_files"
_EMPTY = "_lake_empty_"


def open_source(path: str | Path, lock_timeout: float = 120.0) -> Store:
    """The store at ``path``: a lake when it is a directory, else a DuckDB file."""
    resolved = Path(path).expanduser()
    if looks_like_lake(resolved):
        return LakeStore(resolved, lock_timeout)
    return Store(resolved, lock_timeout)


class LakeStore(Store):
    """A lake directory behind the :class:`Store` reading interface (read-only)."""

    def __init__(self, path: str | Path, lock_timeout: float = 120.0) -> None:
        super().__init__(path, lock_timeout)
        self._scanner: LakeScanner | None = None
        self._shared: duckdb.DuckDBPyConnection | None = None
        self._shared_key: object = None
        self._lock = threading.Lock()
        self.last_scan: LakeScan | None = None

    def __repr__(self) -> str:
        return f"LakeStore({str(self.path)!r})"

    def exists(self) -> bool:
        return (self.path / MARKER).is_file()

    def open_writer(self) -> WriterSession:
        raise StoreError(
            f"{self.path} is a Parquet lake: write to it with the parquet exporter "
            "(SHARDSCOPE_EXPORTERS=parquet SHARDSCOPE_LAKE=...), or merge it into a DuckDB file "
            f"with `shardscope compact {self.path} --db OUT.duckdb` and write there")

    def check_usable(self) -> None:
        self.open_writer()

    def upgrade(self) -> None:
        self._check_marker()
        self._schema_current = True

    def scan(self) -> LakeScan:
        """List and check the lake's files now."""
        if not self.exists():
            raise self._not_a_lake()
        if self._scanner is None:
            self._scanner = LakeScanner(self.path, _expected_schemas())
        scan = self._scanner.scan()
        self.last_scan = scan
        return scan

    @contextlib.contextmanager
    def reader(
        self, *, sandboxed: bool = False, memory_limit: str | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the lake's tables and views, as of now.

        ``sandboxed`` (user SQL): a fresh database that may read the lake's listed files and
        nothing else, with its configuration locked."""
        if not self._schema_current:
            self.upgrade()
        scan = self.scan()
        if sandboxed:
            con = _database(scan, allowed=True, memory_limit=memory_limit)
            try:
                yield con
            finally:
                con.close()
            return
        with self._lock:
            if self._shared is None:
                self._shared = _database(scan)
            elif self._shared_key != scan.key:
                _bind_files(self._shared, scan)
            self._shared_key = scan.key
            cursor = self._shared.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            con, self._shared = self._shared, None
        if con is not None:
            con.close()

    def _not_a_lake(self) -> StoreNotFoundError:
        what = "a directory but not a shardscope lake" if self.path.is_dir() else "missing"
        return StoreNotFoundError(
            f"{self.path} is {what} (no {MARKER}): point --db at a .duckdb store or at a lake "
            "the parquet exporter writes (SHARDSCOPE_LAKE)")

    def _check_marker(self) -> None:
        try:
            marker = json.loads((self.path / MARKER).read_text(encoding="utf-8"))
            version = int(marker.get("schema_version", 0))
        except FileNotFoundError:
            raise self._not_a_lake() from None
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise StoreError(f"{self.path / MARKER} is damaged ({exc}); it should hold "
                             '{"format": 1, "schema_version": N}') from None
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"lake {self.path} was created with schema version {version}, newer than this "
                f"shardscope understands ({SCHEMA_VERSION}); upgrade shardscope")


_SCHEMAS: dict[str, pa.Schema] = {}


def _expected_schemas() -> dict[str, pa.Schema]:
    """The Arrow schema of every stored table a writer fills, from the schema itself."""
    if not _SCHEMAS:
        con = duckdb.connect(":memory:")
        try:
            migrate(con, "memory", __version__)
            for name in _lake_tables(con):
                _SCHEMAS[name] = con.sql(f'SELECT * FROM "{name}" LIMIT 0').to_arrow_table().schema
        finally:
            con.close()
    return dict(_SCHEMAS)


def _lake_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name NOT IN ('shardscope_meta', 'ingested_spills') "
        f"AND table_name NOT LIKE '{_EMPTY}%' AND table_name <> '{SKIPPED_TABLE}' ORDER BY 1"
    ).fetchall()]


def _database(scan: LakeScan, *, allowed: bool = False,
              memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    try:
        migrate(con, "lake", __version__)
        con.execute("SET parquet_metadata_cache = true")
        for name in _lake_tables(con):
            con.execute(f'ALTER TABLE "{name}" RENAME TO "{_EMPTY}{name}"')
        con.execute(f"CREATE TABLE {SKIPPED_TABLE} (path VARCHAR, reason VARCHAR)")
        con.execute(f"COMMENT ON TABLE {SKIPPED_TABLE} IS 'Files of the lake left out of every "
                    "table (foreign, corrupt or cut short), and why.'")
        _bind_files(con, scan)
        if allowed:
            paths = [str(f.path) for files in scan.files.values() for f in files]
            con.execute("SET allowed_paths = ?", [paths or ["/nonexistent-shardscope-lake"]])
            if memory_limit:
                con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute("SET enable_external_access = false")
            con.execute("SET enable_progress_bar = false")
            con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _bind_files(con: duckdb.DuckDBPyConnection, scan: LakeScan) -> None:
    """Point each lake table's view at the files of this scan."""
    for name, files in scan.files.items():
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? AND "
            "database_name = current_database() ORDER BY column_index", [f"{_EMPTY}{name}"]
        ).fetchall()
        select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in columns)
        source = f'SELECT * FROM "{_EMPTY}{name}"'
        if files:
            listed = ", ".join("'" + str(f.path).replace("'", "''") + "'" for f in files)
            source += (f" UNION ALL BY NAME SELECT * FROM read_parquet([{listed}], "
                       "union_by_name = true, hive_partitioning = false)")
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT {select} FROM ({source})')
    con.execute(f"DELETE FROM {SKIPPED_TABLE}")
    if scan.skipped:
        con.executemany(f"INSERT INTO {SKIPPED_TABLE} VALUES (?, ?)",
                        [[str(s.path), s.reason] for s in scan.skipped])
