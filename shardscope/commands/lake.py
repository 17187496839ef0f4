"""`shardscope compact`: merge a Parquet lake into one DuckDB store."""

from __future__ import annotations

import sys
from pathlib import Path

from shardscope.config.errors import ShardscopeError
from shardscope.config.settings import load_settings
from shardscope.tracer.compact import CompactReport, compact
from shardscope.tracer.lake_store import LakeStore
from shardscope.tracer.store import Store


def compact_command(lake: Path, db: Path | None) -> int:
    """Compact ``lake`` into the store ``db`` (default: the `db` setting); print what it did."""
    if not lake.is_dir():
        what = "a file" if lake.exists() else "missing"
        raise ShardscopeError(f"LAKE {lake} is {what}: pass the lake's directory (the one holding "
                              "_shardscope_lake.json), e.g. `shardscope compact /shared/lake --db "
                              "local.duckdb`")
    settings = load_settings(db=db)
    target = Store(settings.db, settings.lock_timeout)
    if target.path == lake.expanduser().absolute():
        raise ShardscopeError("--db names the lake itself; choose a .duckdb file to compact into")
    print_report(compact(LakeStore(lake, settings.lock_timeout), target))
    return 0


def print_report(report: CompactReport) -> None:
    added = ", ".join(f"{t}: {n:,}" for t, n in report.added.items()) or "nothing"
    present = sum(report.present.values())
    print(f"compacted {report.files:,} lake files into {report.store}; added {added}"
          + (f"; {present:,} rows were already there" if present else ""))
    for skipped in report.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if report.skipped:
        print(f"{len(report.skipped)} file(s) skipped; everything else was compacted",
              file=sys.stderr)
    if report.temporary_files:
        print(f"{report.temporary_files} temporary file(s) ignored (a writer is still writing, "
              "or was killed while writing: run compact again when writers are done)",
              file=sys.stderr)
