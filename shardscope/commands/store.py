"""`shardscope query` and `shardscope status`: read the store, print the answer."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from shardscope.commands import output as out
from shardscope.config.errors import ShardscopeError
from shardscope.config.settings import load_settings
from shardscope.tracer.lake_store import open_source
from shardscope.tracer.queries.status import describe_schema, store_status
from shardscope.tracer.queries.user_sql import run_sql
from shardscope.tracer.store import Store

TABLE_ROWS = 200  # the table format's default --max-rows


def open_store(db: Path | None) -> Store:
    """The store the settings name (``--db`` first), not opened yet: a Parquet lake when the
    path is a directory."""
    settings = load_settings(db=db)
    return open_source(settings.db, settings.lock_timeout)  # a lake directory, or a DuckDB file


@dataclass(frozen=True)
class QueryOptions:
    sql: str | None
    file: Path | None
    fmt: str  # table | csv | json
    schema: bool
    max_rows: int | None


def query_command(store: Store, options: QueryOptions) -> int:
    """Print the schema, or the result of the user's read-only SQL."""
    if options.schema:
        out.print_schema(describe_schema(store))
        return 0
    text = sql_text(options.sql, options.file)
    limit = options.max_rows
    if limit is None and options.fmt == "table":
        limit = TABLE_ROWS
    table = run_sql(store, text, max_rows=limit + 1 if limit else None)
    truncated = limit is not None and table.num_rows > limit
    if truncated:
        table = table.slice(0, limit)
    out.print_table(table, options.fmt, truncated=truncated)
    return 0


def sql_text(sql: str | None, file: Path | None) -> str:
    """The SQL from ``--file``, stdin (``-``) or the argument."""
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ShardscopeError(f"--file {file}: not a text file of SQL") from None
        except OSError as exc:
            raise ShardscopeError(f"--file {file}: cannot read it: {exc.strerror}") from None
    if sql == "-":
        return sys.stdin.read()
    if not sql:
        raise ShardscopeError(
            "no SQL given: pass it as an argument, with --file, or '-' for stdin "
            "(see `shardscope query --help`)"
        )
    return sql


def status_command(store: Store, *, as_json: bool) -> int:
    out.print_status(store_status(store), as_json=as_json)
    return 0
