"""``sql``: read-only queries over the episode's DuckDB dataset.

Three locks on the door: only SELECT-like statements are accepted, the file is opened
``read_only=True``, and external access (files, URLs, extensions) is disabled and the
configuration locked. A timer thread interrupts a query that runs past the timeout.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult, truncate
from shardscope.scaffolds.types import ToolSpec

_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
MAX_QUERY_CHARS = 5000


class SqlQuery(Tool):
    spec = ToolSpec(
        name="sql",
        description=(
            "Run one read-only SQL query (DuckDB dialect) over the task's dataset and get the "
            "rows back. Use SHOW TABLES or DESCRIBE <table> to see the schema."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "one SELECT statement"}
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if ctx.dataset_path is None or not ctx.dataset_path.exists():
            return ToolResult.fail("no_dataset", "there is no dataset to query in this task")
        query = arguments["query"].strip()
        refusal = _refusal(query)
        if refusal is not None:
            return ToolResult.fail("not_read_only", refusal)
        try:
            con = duckdb.connect(
                str(ctx.dataset_path),
                read_only=True,
                config={
                    "enable_external_access": False,
                    "threads": 1,
                    "memory_limit": f"{ctx.memory_mb}MB",
                },
            )
        except duckdb.Error as exc:
            raise RuntimeError(f"cannot open the dataset {ctx.dataset_path}: {exc}") from exc
        try:
            con.execute("SET lock_configuration = true")
            return _run(con, query, ctx)
        finally:
            con.close()


def _refusal(query: str) -> str | None:
    if len(query) > MAX_QUERY_CHARS:
        return f"the query is longer than {MAX_QUERY_CHARS} characters"
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        return None if "syntax" in str(exc).lower() else str(exc)  # let execution report syntax
    if len(statements) != 1:
        return f"send exactly one SQL statement, got {len(statements)}"
    kind = statements[0].type
    if kind not in _READ_ONLY:
        return f"only read-only queries (SELECT) are allowed; this statement is {kind.name}"
    return None


def _run(con: duckdb.DuckDBPyConnection, query: str, ctx: ToolContext) -> ToolResult:
    timer = threading.Timer(ctx.timeout_s, con.interrupt)
    timer.start()
    try:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchmany(ctx.max_rows + 1)
    except duckdb.InterruptException:
        return ToolResult.fail(
            "timeout", f"the query ran longer than {ctx.timeout_s:g} s and was stopped; simplify it"
        )
    except duckdb.Error as exc:
        message = _first_lines(str(exc))
        if isinstance(exc, duckdb.CatalogException):
            message += f"\nTables in this dataset: {', '.join(_tables(con)) or 'none'}"
        return ToolResult.fail(_error_type(exc), message)
    finally:
        timer.cancel()
    return _table(columns, rows, ctx)


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    found = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
    ).fetchall()
    return [name for (name,) in found]


def _error_type(exc: duckdb.Error) -> str:
    text = str(exc)
    if (
        isinstance(exc, duckdb.PermissionException)
        or "read-only mode" in text
        or "has been locked" in text
    ):
        return "not_read_only"
    if isinstance(exc, duckdb.ParserException):
        return "sql_syntax_error"
    if isinstance(exc, duckdb.CatalogException | duckdb.BinderException):
        return "sql_unknown_name"
    return "sql_error"


def _first_lines(message: str, lines: int = 6) -> str:
    return "\n".join(message.strip().splitlines()[:lines])


def _table(columns: list[str], rows: list[tuple[Any, ...]], ctx: ToolContext) -> ToolResult:
    more = len(rows) > ctx.max_rows
    rows = rows[: ctx.max_rows]
    lines = [" | ".join(columns)] + [" | ".join(_cell(v) for v in row) for row in rows]
    count = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    if more:
        count = f"(first {ctx.max_rows} rows shown; more exist: add LIMIT or aggregate)"
    text, cut = truncate("\n".join(lines), ctx.max_output_chars)
    return ToolResult(True, f"{text}\n{count}", truncated=cut or more)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)
