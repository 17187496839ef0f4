"""``sql``: read-only queries over the episode's DuckDB dataset.

Three locks on the door: only SELECT-like statements are accepted, the file is opened
``read_only=True``, and external access (files, URLs, extensions) is disabled and the
configuration locked. A timer thread interrupts a query that runs past the timeout.

The query runs in a child process, because DuckDB's ``memory_limit`` only bounds its buffer
manager: ``SELECT repeat('x', 1500000000)`` took this process to 2.9 GB under a 512 MB limit
(measured). The child has ``memory_limit = memory_mb``, one thread, a private spill directory
capped at ``memory_mb``, and an address-space limit (``RLIMIT_AS``) of ``memory_mb`` plus
the ~770 MB of address space Python and DuckDB reserve before any query (VmPeak measured
766,060 kB); the run process's own memory is not touched by the query at all.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult, truncate
from shardscope.scaffolds.tools.sandbox import (
    Completed,
    child_env,
    run_worker,
)
from shardscope.scaffolds.types import ToolSpec

_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
MAX_QUERY_CHARS = 5000
RUNTIME_ADDRESS_SPACE_MB = 768  # what the child reserves before the query (see above)
_STARTUP_GRACE_S = 20.0  # past the query's own timeout, for the child to start and report

# The child: opens the dataset locked down, runs one query, prints one JSON document.
_WORKER = r"""
import json, resource, sys, threading
job = json.loads(sys.argv[1])
for name, value in job["limits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
import duckdb

def cell(value, limit):
    text = "NULL" if value is None else format(value, ".10g") if isinstance(value, float) else str(value)
    return text[:limit]

def tables(con):
    found = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
    ).fetchall()
    return [name for (name,) in found]

con = duckdb.connect(job["path"], read_only=True, config=job["config"])
con.execute("SET lock_configuration = true")
timer = threading.Timer(job["timeout_s"], con.interrupt)
timer.start()
try:
    cursor = con.execute(job["query"])
    columns = [d[0] for d in cursor.description or ()]
    rows = [[cell(v, job["cell_chars"]) for v in row] for row in cursor.fetchmany(job["rows"])]
    out = {"columns": columns, "rows": rows}
except duckdb.Error as exc:
    out = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, duckdb.CatalogException):
        out["tables"] = tables(con)
finally:
    timer.cancel()
print(json.dumps(out))
"""


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
        return _run(ctx.dataset_path, query, ctx)


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


def _run(dataset: Path, query: str, ctx: ToolContext) -> ToolResult:
    with tempfile.TemporaryDirectory(prefix="shardscope-sql-") as scratch:
        # DuckDB allows file access inside its temp_directory: not the child's cwd, then
        spill = Path(scratch) / "spill"
        job = {
            "path": str(dataset.resolve()),
            "query": query,
            "timeout_s": ctx.timeout_s,
            "rows": ctx.max_rows + 1,
            "cell_chars": ctx.max_output_chars,
            "config": connection_config(ctx.memory_mb, spill),
            "limits": _limits(ctx),
        }
        done = run_worker(
            [sys.executable, "-c", _WORKER, json.dumps(job)],
            Path(scratch),
            timeout_s=ctx.timeout_s + _STARTUP_GRACE_S,
            env=child_env(scratch),
        )
    return _result(done, ctx)


def _limits(ctx: ToolContext) -> dict[str, int]:
    memory = (ctx.memory_mb + RUNTIME_ADDRESS_SPACE_MB) * 1024 * 1024
    cpu = int(ctx.timeout_s + _STARTUP_GRACE_S)
    return {
        "RLIMIT_AS": memory,
        "RLIMIT_CPU": cpu,
        "RLIMIT_CORE": 0,
    }


def connection_config(memory_mb: int, spill: Path) -> dict[str, Any]:
    """The DuckDB settings of the query's connection: locked down and bounded."""
    return {
        "enable_external_access": False,
        "threads": 1,
        "memory_limit": f"{memory_mb}MB",
        "temp_directory": str(spill),
        "max_temp_directory_size": f"{memory_mb}MB",
    }


def _result(done: Completed, ctx: ToolContext) -> ToolResult:
    try:
        out = json.loads(done.output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = None
    if done.timed_out or (out is not None and out.get("error") == "InterruptException"):
        return ToolResult.fail(
            "timeout", f"the query ran longer than {ctx.timeout_s:g} s and was stopped; simplify it"
        )
    if not isinstance(out, dict) or (out.get("error") == "OutOfMemoryException"):
        return _crashed(done, ctx)
    if "error" in out:
        message = _first_lines(out["message"])
        if "tables" in out:
            message += f"\nTables in this dataset: {', '.join(out['tables']) or 'none'}"
        return ToolResult.fail(_error_type(out["error"], out["message"]), message)
    return _table(out["columns"], [tuple(r) for r in out["rows"]], ctx)


def _crashed(done: Completed, ctx: ToolContext) -> ToolResult:
    text = done.output
    if "Out of Memory" in text or done.out_of_memory or "bad_alloc" in text:
        return ToolResult.fail(
            "memory_limit",
            f"the query needed more than the memory limit of {ctx.memory_mb} MB and was "
            "stopped; aggregate more, or select fewer or smaller values",
        )
    last = text.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
    return ToolResult.fail("sql_error", f"the query process failed: {last[0][:300]}")


def _error_type(kind: str, text: str) -> str:
    """Our error type for the child's DuckDB exception class name and message."""
    if kind == "PermissionException" or "read-only mode" in text or "has been locked" in text:
        return "not_read_only"
    if kind == "ParserException":
        return "sql_syntax_error"
    if kind in ("CatalogException", "BinderException"):
        return "sql_unknown_name"
    return "sql_error"


def _first_lines(message: str, lines: int = 6) -> str:
    return "\n".join(message.strip().splitlines()[:lines])


def _table(columns: list[str], rows: list[tuple[str, ...]], ctx: ToolContext) -> ToolResult:
    more = len(rows) > ctx.max_rows
    rows = rows[: ctx.max_rows]
    lines = [" | ".join(columns)] + [" | ".join(row) for row in rows]
    count = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    if more:
        count = f"(first {ctx.max_rows} rows shown; more exist: add LIMIT or aggregate)"
    text, cut = truncate("\n".join(lines), ctx.max_output_chars)
    return ToolResult(True, f"{text}\n{count}", truncated=cut or more)
