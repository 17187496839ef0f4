"""``shardscope compact``: merge a Parquet lake into one DuckDB store, for fast local reads.

Idempotent: a row the store already holds is not added again, whichever file (or earlier
compaction, or direct write) brought it: spans by (trace_id, span_id) as the collector's
ingest does, events by (trace_id, span_id, seq), writer counters by writer and time
(``tracer.lake.ROW_KEYS``). Compacting a lake twice, or a grown lake again, adds only what is
new. One transaction: an interrupted compaction leaves the store as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from shardscope.config.errors import StoreError
from shardscope.tracer.lake import ROW_KEYS, LakeScan, SkippedFile
from shardscope.tracer.lake_store import LakeStore
from shardscope.tracer.store import Store


@dataclass(frozen=True)
class CompactReport:
    """What a compaction did, per table: rows added, rows already in the store."""

    store: str
    files: int
    added: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    skipped: tuple[SkippedFile, ...] = ()
    temporary_files: int = 0


def compact(lake: LakeStore, store: Store) -> CompactReport:
    """Add the lake's rows that ``store`` lacks (creating the store if needed)."""
    store.check_usable()
    scan = lake.scan()
    added: dict[str, int] = {}
    present: dict[str, int] = {}
    with store.writer() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for table, files in scan.files.items():
                if files:
                    added[table], present[table] = _merge(con, table, scan)
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"compacting {lake.path} into {store.path} failed; the store is as "
                             f"it was: {first}") from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
    count = sum(len(f) for f in scan.files.values())
    return CompactReport(str(store.path), count, added, present, tuple(scan.skipped),
                         scan.in_progress)


def _merge(con: duckdb.DuckDBPyConnection, table: str, scan: LakeScan) -> tuple[int, int]:
    listed = ", ".join("'" + str(f.path).replace("'", "''") + "'" for f in scan.files[table])
    keys = ", ".join(f'"{k}"' for k in ROW_KEYS.get(table, ()))
    source = f"SELECT * FROM read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"
    if keys:
        # One row per key from the lake, and none the store holds already.
        source = (f"SELECT * FROM ({source}) QUALIFY row_number() OVER (PARTITION BY {keys}) = 1")
        source = f'SELECT n.* FROM ({source}) n ANTI JOIN "{table}" o USING ({keys})'
    before = _count(con, table)
    con.execute(f'INSERT INTO "{table}" BY NAME {source}')
    new = _count(con, table) - before
    return new, scan.rows(table) - new


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(row[0]) if row else 0
