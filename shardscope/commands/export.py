"""`shardscope export`: the store's views and tables as hive-partitioned Parquet, or its spans
and log records as OTLP JSON Lines (the OTLP File Exporter format), with a progress bar."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shardscope import __version__
from shardscope.tracer.otlp_file import export_otlp
from shardscope.tracer.queries.export import (
    RELATIONS,
    ExportError,
    ExportFilter,
    missing_values,
    relation_sql,
    span_count,
    write_parquet,
)
from shardscope.tracer.store import Store

FORMATS = ("parquet", "otlp-json")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ExportOptions:
    fmt: str
    out: Path
    flt: ExportFilter
    overwrite: bool = False
    progress: bool = True


def _bar(label: str, enabled: bool) -> Progress:
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.description}"),
                    console=Console(stderr=True), disable=not enabled)


def _check_filter(store: Store, flt: ExportFilter) -> None:
    with store.reader() as con:
        missing = missing_values(con, flt)
    if missing:
        raise ExportError(f"nothing in {store.path} matches {', '.join(missing)}; see "
                          "`shardscope query \"SELECT run_id, suite, model FROM episodes\"`")


def _check_out(out: Path, names: list[str], overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a directory")
    taken = [n for n in names if (out / n).exists()]
    if taken and not overwrite:
        raise ExportError(f"--out {out} already holds {', '.join(taken)}; choose an empty "
                          "directory or pass --overwrite")


def export_command(store: Store, options: ExportOptions) -> int:
    """Run the export; prints where each file went."""
    if options.fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {options.fmt!r}")
    _check_filter(store, options.flt)
    if options.fmt == "parquet":
        _check_out(options.out, [*RELATIONS, MANIFEST], options.overwrite)
        counts = export_parquet(store, options)
        total = sum(counts.values())
        print(f"wrote {total} rows in {sum(1 for n in counts.values() if n)} relations to "
              f"{options.out} (Parquet, partitioned by run_id; {MANIFEST} lists them)")
        print(f"read with: SELECT * FROM read_parquet('{options.out}/episodes/*/*.parquet', "
              "hive_partitioning = true)")
        return 0
    _check_out(options.out, ["traces.jsonl", "logs.jsonl"], options.overwrite)
    written = export_otlp_files(store, options)
    for name, (lines, items) in written.items():
        print(f"wrote {options.out / name}: {items} {'spans' if 'traces' in name else 'log records'}"
              f" in {lines} lines")
    print("replay with any OTLP/HTTP receiver: POST each line to /v1/traces (logs.jsonl to "
          "/v1/logs) as application/json")
    return 0


def export_parquet(store: Store, options: ExportOptions) -> dict[str, int]:
    """Each relation under ``out/<name>/run_id=<id>/``; one read-only connection per relation,
    so a run writing the store gets in between them. Returns rows per relation."""
    options.out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with _bar("export", options.progress) as bar:
        task = bar.add_task("", total=len(RELATIONS))
        for name in RELATIONS:
            bar.update(task, description=name)
            sql, params = relation_sql(name, options.flt)
            with store.reader() as con:
                counts[name] = write_parquet(con, sql, params, options.out / name,
                                             overwrite=options.overwrite)
            bar.advance(task)
    _write_manifest(options, counts)
    return counts


def _write_manifest(options: ExportOptions, counts: dict[str, int]) -> None:
    manifest = {
        "format": "parquet", "partitioned_by": "run_id", "written_by": f"shardscope {__version__}",
        "written_at": datetime.now(UTC).isoformat(), "filter": asdict(options.flt),
        "relations": {name: {"rows": rows, "glob": f"{name}/*/*.parquet"}
                      for name, rows in counts.items()},
    }
    (options.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def export_otlp_files(store: Store, options: ExportOptions) -> dict[str, tuple[int, int]]:
    with store.reader() as con:
        total = span_count(con, options.flt)
        with _bar("spans", options.progress) as bar:
            task = bar.add_task("traces.jsonl", total=total)
            return export_otlp(con, options.flt, options.out,
                               lambda n: bar.advance(task, n))
