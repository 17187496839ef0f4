"""Terminal output for the CLI: tables, CSV, JSON, schema listings, store status."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

_MAX_CELL = 80


def console() -> Console:
    """The console every command prints through (wide when piped)."""
    return _console()


def _console() -> Console:
    # Piped output (CI logs, files) gets a wide page instead of rich's 80-column default.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(_plain(value)).replace("\n", "⏎")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def print_table(table: pa.Table, fmt: str, *, truncated: bool = False) -> None:
    """Print an Arrow result as a table, CSV or JSON (one object per row, in an array)."""
    rows = table.to_pylist()
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(table.column_names)
        for row in rows:
            writer.writerow([_plain(v) for v in row.values()])
    elif fmt == "json":
        json.dump(
            [{k: _plain(v) for k, v in row.items()} for row in rows],
            sys.stdout, ensure_ascii=False, indent=1, default=str,
        )
        sys.stdout.write("\n")
    else:
        _print_rich(table.column_names, rows, truncated)
    if truncated and fmt != "table":
        print("warning: output truncated by --max-rows", file=sys.stderr)


def _print_rich(columns: Sequence[str], rows: list[dict[str, Any]], truncated: bool) -> None:
    console = _console()
    if not columns:
        console.print("(statement executed; no result set)")
        return
    grid = Table(show_lines=False, header_style="bold")
    for name in columns:
        grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(v) for v in row.values()))
    console.print(grid)
    more = " (more rows: raise --max-rows or use --format csv)" if truncated else ""
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{more}", style="dim")


def print_schema(relations: Sequence[Any]) -> None:
    console = _console()
    for rel in relations:
        console.print(f"[bold]{rel.name}[/bold] ({rel.kind}) — {rel.description}")
        for col in rel.columns:
            note = f"  [dim]{col.description}[/dim]" if col.description else ""
            console.print(f"    {col.name:<24} {col.type:<14}{note}")
        console.print()


_WRITER_COLUMNS = (
    ("pid", "pid"), ("last write", "recorded_at"), ("spans", "spans_written"),
    ("events", "events_written"), ("waits", "backpressure_waits"), ("errors", "write_errors"),
    ("spilled", "spilled_spans"), ("lost", "lost_spans"),
)


def print_status(status: Any, *, as_json: bool = False) -> None:
    if as_json:
        data = dataclasses.asdict(status) | {"problems": status.problems}
        json.dump(data, sys.stdout, indent=1, default=_plain)
        sys.stdout.write("\n")
        return
    console = _console()
    console.print(f"[bold]store[/bold] {status.path}")
    console.print(
        f"schema v{status.schema_version}, {status.size_bytes / 1e6:.1f} MB on disk; "
        + ", ".join(f"{name}: {count:,}" for name, count in status.counts.items())
    )
    if status.writers:
        grid = Table(title="writers (latest counters of each process)", header_style="bold")
        for header, _ in _WRITER_COLUMNS:
            grid.add_column(header, justify="right")
        for w in status.writers:
            grid.add_row(*(_cell(w[key]) for _, key in _WRITER_COLUMNS))
        console.print(grid)
    problems = status.problems
    if problems:
        console.print("[bold red]problems:[/bold red]")
        for line in problems:
            console.print(f"  - {line}")
    else:
        console.print("[green]no span lost, dropped or spilled[/green]")


def _percent(value: Any) -> str:
    """A rate as the comparison's table prints it (shardscope.analysis.report.format_value)."""
    from shardscope.analysis.report import format_value

    return format_value(value, True, digits=0)


def print_run_report(report: Any, summary: Any, store_path: Any) -> None:
    """The end of a run: the comparison table, then what to do next."""
    console = _console()
    if summary is not None and len(summary):
        grid = Table(title=f"run {report.run_id}: model x scaffold", header_style="bold")
        for header in ("model", "scaffold", "n", "success", "95% CI", "score", "steps", "tokens",
                       "cost $", "s/episode", "protocol err", "budget out", "errors"):
            grid.add_column(header, justify="left" if header in ("model", "scaffold") else "right")
        for row in summary.itertuples():
            grid.add_row(
                row.model, row.scaffold, str(row.episodes),
                f"{_percent(row.success_rate)} ± {_percent(row.success_se)}",
                f"[{_percent(row.ci_low)}, {_percent(row.ci_high)}]",
                f"{row.mean_score:.2f}", f"{row.mean_steps:.1f}", f"{int(row.tokens or 0):,}",
                "∅" if row.cost_usd != row.cost_usd or row.cost_usd is None else f"{row.cost_usd:.4f}",
                f"{row.mean_seconds:.1f}", str(row.protocol_errors), str(row.budget_exhausted),
                str(row.errors),
            )
        console.print(grid)
    state = "interrupted" if report.interrupted else "finished"
    console.print(
        f"run {report.run_id} {state}: {report.ran} episodes run, {report.skipped} already done, "
        f"{report.planned} planned, {report.seconds:.0f}s"
        + (f"; {report.reused} baselines reused from the store" if getattr(report, "reused", 0) else "")
    )
    if report.interrupted:
        console.print(f"resume it with: [bold]shardscope run --resume {report.run_id}[/bold]")
    db = f" --db {store_path}" if str(store_path) != str(Path("shardscope.duckdb").absolute()) else ""
    console.print("next:")
    console.print(f"  shardscope ui{db}                      # explore the traces in the browser")
    console.print(f'  shardscope query{db} "SELECT * FROM episodes WHERE run_id = \'{report.run_id}\'"')
    console.print(f"  shardscope compare{db} --run {report.run_id}  # differences with error bars")
