"""What the store holds: its tables and views with their columns and descriptions
(``shardscope query --schema``, the console's schema), its counters and losses
(``shardscope status``), and a token that changes whenever a writer commits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardscope.tracer.columns import column_description
from shardscope.tracer.lake import lake_version
from shardscope.tracer.lake_store import LakeStore
from shardscope.tracer.queries.frames import aggregate_row
from shardscope.tracer.schema import DESCRIPTIONS, VIEWS, stored_version
from shardscope.tracer.sinks import spill_dir
from shardscope.tracer.store import Store


def store_version(path: str | Path) -> str:
    """A cheap token that changes whenever a writer commits (size + mtime of file and WAL).

    No connection, no lock: safe to compute on every rerun to key caches and notice live runs.
    For a Parquet lake: the count, total size and latest mtime of its files.
    """
    if Path(path).is_dir():
        return lake_version(Path(path))
    parts = []
    for file in (Path(path), Path(f"{path}.wal")):
        try:
            stat = os.stat(file)
            parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
        except FileNotFoundError:
            parts.append("-")
    return "/".join(parts)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str | None


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str  # "view" or "table"
    description: str
    columns: tuple[Column, ...]


_PUBLIC_ORDER = [*VIEWS, "spans", "span_events", "writer_stats", "ingested_spills", "shardscope_meta"]


def describe_schema(store: Store) -> list[Relation]:
    """Every table and view of the store with its columns and descriptions."""
    with store.reader() as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "ORDER BY table_name, column_index"
        ).fetchall()
    columns: dict[str, list[Column]] = {}
    for table, name, dtype, comment in rows:
        columns.setdefault(table, []).append(
            Column(name, dtype, comment or column_description(table, name)))
    ordered = [n for n in _PUBLIC_ORDER if n in columns] + sorted(set(columns) - set(_PUBLIC_ORDER))
    return [
        Relation(
            name,
            "view" if name in VIEWS else "table",
            DESCRIPTIONS.get(name, ""),
            tuple(columns[name]),
        )
        for name in ordered
    ]


@dataclass(frozen=True)
class StoreStatus:
    path: str
    size_bytes: int
    schema_version: int
    counts: dict[str, int]
    writers: list[dict[str, Any]]
    pending_spill_files: int
    # A Parquet lake: files left out (path: reason) and writers' unfinished temporary files.
    lake_skipped_files: tuple[str, ...] = ()
    lake_temporary_files: int = 0

    @property
    def problems(self) -> list[str]:
        """Losses or drops anywhere in the pipeline: what `shardscope status` warns about."""
        out = []
        for w in self.writers:
            for key in ("lost_spans", "secondary_dropped_spans", "sdk_dropped_events",
                        "sdk_dropped_attributes", "spilled_spans"):
                if w.get(key):
                    out.append(f"writer {w['writer_id']} (pid {w['pid']}): {key} = {w[key]}")
        if self.pending_spill_files:
            out.append(
                f"{self.pending_spill_files} spill file(s) await ingestion by the next writer"
            )
        if self.lake_skipped_files:
            out.append(f"{len(self.lake_skipped_files)} lake file(s) skipped (not read as any "
                       "table; table lake_skipped_files says why): "
                       + "; ".join(self.lake_skipped_files[:5]))
        if self.lake_temporary_files:
            out.append(f"{self.lake_temporary_files} temporary lake file(s): a writer is writing "
                       "them now, or was killed while writing (safe to delete once no writer runs)")
        return out


def store_status(store: Store) -> StoreStatus:
    """Counts, schema version, per-writer pipeline counters and pending spills."""
    with store.reader() as con:
        version = stored_version(con)
        counts = {
            name: int(aggregate_row(con, f"SELECT count(*) FROM {name}")[0])
            for name in ("spans", "span_events", "episodes", "runs")
        }
        latest = con.execute(
            "SELECT * FROM writer_stats QUALIFY row_number() OVER "
            "(PARTITION BY writer_id ORDER BY recorded_at DESC, spans_written DESC) = 1 "
            "ORDER BY started_at"
        )
        names = [d[0] for d in latest.description]
        writers = [dict(zip(names, row, strict=True)) for row in latest.fetchall()]
    spills = spill_dir(store)
    pending = len(list(spills.glob("*.spans.parquet"))) if spills.is_dir() else 0
    if isinstance(store, LakeStore) and store.last_scan is not None:
        scan = store.last_scan
        size = sum(f.path.stat().st_size for files in scan.files.values() for f in files)
        skipped = tuple(f"{s.path}: {s.reason}" for s in scan.skipped)
        return StoreStatus(str(store.path), size, version, counts, writers, pending, skipped,
                           scan.in_progress)
    size = store.path.stat().st_size + _wal_size(store)
    return StoreStatus(str(store.path), size, version, counts, writers, pending)


def _wal_size(store: Store) -> int:
    wal = store.path.with_name(store.path.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0
