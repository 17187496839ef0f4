"""The ``shardscope`` command line. Each command is a thin layer over library functions."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from shardscope import __version__
from shardscope.errors import ShardscopeError

app = typer.Typer(
    name="shardscope",
    help=(
        "Trace identical agent scaffolds over interchangeable LLMs into DuckDB, and compare how "
        "each model uses the pieces ('shards') of the same task.\n\n"
        "Start with `shardscope demo`, then `shardscope ui` or `shardscope query`."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        help="Store path (a DuckDB file). Default: setting `db` (SHARDSCOPE_DB, shardscope.toml), "
        "else ./shardscope.duckdb.",
        show_default=False,
    ),
]


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _store(db: Path | None):  # noqa: ANN202 - tracer.Store, imported lazily for a fast --help
    from config.settings import load_settings
    from tracer.store import Store

    settings = load_settings(db=db)
    return Store(settings.db, settings.lock_timeout)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"shardscope {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """shardscope command line."""


@app.command()
def query(
    sql: Annotated[
        Optional[str],
        typer.Argument(help="SQL to run read-only against the store; '-' reads it from stdin."),
    ] = None,
    db: DbOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    schema: Annotated[
        bool, typer.Option("--schema", help="List the views and tables with their columns.")
    ] = False,
    file: Annotated[
        Optional[Path], typer.Option("--file", help="Read the SQL from this file.", exists=True)
    ] = None,
    max_rows: Annotated[
        Optional[int],
        typer.Option("--max-rows", min=1, help="Stop after this many rows (table format: 200)."),
    ] = None,
) -> None:
    """Query the store with SQL, safely, even while runs are writing to it.

    The connection is read-only and cannot touch other files. Views to start with:
    `episodes`, `steps`, `llm_calls`, `tool_calls`, `messages`, `token_events`, `runs`.

    Examples:

        shardscope query "SELECT model, avg(score) FROM episodes GROUP BY model"

        shardscope query --format csv "SELECT * FROM tool_calls" > tools.csv

        shardscope query --schema
    """
    from shardscope import output as out
    from tracer.queries import describe_schema, run_sql

    store = _store(db)
    if schema:
        out.print_schema(describe_schema(store))
        return
    text = _sql_text(sql, file)
    limit = max_rows if max_rows is not None else (200 if output is OutputFormat.table else None)
    table = run_sql(store, text, max_rows=limit + 1 if limit else None)
    truncated = limit is not None and table.num_rows > limit
    if truncated:
        table = table.slice(0, limit)
    out.print_table(table, output.value, truncated=truncated)


def _sql_text(sql: str | None, file: Path | None) -> str:
    if file is not None:
        return file.read_text(encoding="utf-8")
    if sql == "-":
        return sys.stdin.read()
    if not sql:
        raise ShardscopeError(
            "no SQL given: pass it as an argument, with --file, or '-' for stdin "
            "(see `shardscope query --help`)"
        )
    return sql


@app.command()
def status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the store: schema version, counts, every writer's pipeline counters, and any
    lost, dropped or spilled spans."""
    from shardscope import output as out
    from tracer.queries import store_status

    out.print_status(store_status(_store(db)), as_json=as_json)


def main() -> None:
    """Console-script entry point: user errors print one line, not a traceback."""
    try:
        app()
    except ShardscopeError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
