"""``sql``: read-only queries over the episode's DuckDB dataset.

Three locks on the door: only SELECT-like statements are accepted, the file is opened
``read_only=True``, and external access (files, URLs, extensions) is disabled and the
configuration locked. A timer thread interrupts a query that runs past the timeout.

The query runs in a separate, long-lived worker process (:mod:`.sql_worker`), because
DuckDB's ``memory_limit`` only bounds its buffer manager: ``SELECT repeat('x', 1500000000)``
took this process to 2.9 GB under a 512 MB limit (measured). The worker has ``memory_limit =
memory_mb``, one thread, a private spill directory capped at ``memory_mb``, an address-space
limit (``RLIMIT_AS``) of ``memory_mb`` plus the ~770 MB Python and DuckDB reserve before any
query, and a CPU budget per query; the run process's own memory is not touched by the query
at all. A worker that crashed, timed out or ran out of memory is replaced for the next query.
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any

import duckdb

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult, truncate
from shardscope.scaffolds.tools.sandbox import Completed
from shardscope.scaffolds.tools.sql_worker import WorkerPool
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

    def __init__(self) -> None:
        super().__init__()
        self.workers = WorkerPool()
        weakref.finalize(self, self.workers.close)  # also at exit: no worker outlives us

    def close(self) -> None:
        """Stop the idle query workers (the next query starts a new one)."""
        self.workers.close()

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if ctx.dataset_path is None or not ctx.dataset_path.exists():
            return ToolResult.fail("no_dataset", "there is no dataset to query in this task")
        query = arguments["query"].strip()
        refusal = _refusal(query)
        if refusal is not None:
            return ToolResult.fail("not_read_only", refusal)
        return _run(self.workers, ctx.dataset_path, query, ctx)


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


def _run(workers: WorkerPool, dataset: Path, query: str, ctx: ToolContext) -> ToolResult:
    job = {
        "path": str(dataset.resolve()),
        "query": query,
        "timeout_s": ctx.timeout_s,
        "rows": ctx.max_rows + 1,
        "cell_chars": ctx.max_output_chars,
    }
    return _result(workers.ask(ctx.memory_mb, job, ctx.timeout_s), ctx)


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
