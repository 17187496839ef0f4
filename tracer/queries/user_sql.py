"""SQL typed by a user (``shardscope query``, the app's SQL console): one read statement
(checked by DuckDB's parser before it runs), on a read-only connection with no file access,
a locked configuration, a memory limit and a time limit, with DuckDB's errors turned into one
actionable line; and the console's example questions. The console runs it in a worker
process (:mod:`shardscope.tracer.queries.sql_worker`) so that no query can bring the app down.
This is the only way user SQL reaches the store: the analysis functions take no SQL."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from shardscope.config.errors import QueryError
from shardscope.config.settings import Settings, load_settings
from shardscope.tracer.store import Store

_HINTS = (
    ("Catalog Error", "run `shardscope query --schema` for the tables and views"),
    ("Binder Error", "run `shardscope query --schema` for the columns of each view"),
    ("read-only mode", "queries cannot change the store"),
    ("Permission Error", "queries cannot read or write files outside the store"),
    ("configuration has been locked", "queries cannot change settings"),
    ("Out of Memory", "raise the setting sql_memory_limit (SHARDSCOPE_SQL_MEMORY_LIMIT), "
                      "or aggregate more"),
)
_EXPLAIN = re.compile(r"\s*EXPLAIN(\s+ANALYZE)?\b", re.IGNORECASE)
_READ = "only a read statement may run: SELECT (also WITH, FROM, VALUES, SHOW, DESCRIBE, " \
    "SUMMARIZE) or EXPLAIN of one"
_FILES = {"COPY", "ATTACH", "DETACH", "EXPORT", "LOAD", "COPY_DATABASE"}


@dataclass(frozen=True)
class SqlLimits:
    """What a user's query may spend: seconds before it is interrupted, and DuckDB memory."""

    timeout: float = 30.0
    memory_limit: str = "1GB"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SqlLimits:
        s = load_settings() if settings is None else settings
        return cls(s.sql_timeout, s.sql_memory_limit)


def run_sql(
    store: Store, sql: str, params: list[Any] | None = None, *, max_rows: int | None = None,
    limits: SqlLimits | None = None,
) -> pa.Table:
    """Run one user read statement, read-only and sandboxed (no file access, configuration
    locked, memory-limited, interrupted after ``limits.timeout``); errors become QueryError."""
    if not sql or not sql.strip():
        raise QueryError("empty query: pass a SQL statement, e.g. \"SELECT * FROM episodes\"")
    limits = SqlLimits.from_settings() if limits is None else limits
    with store.reader(sandboxed=True, memory_limit=limits.memory_limit) as con:
        statement = read_statement(con, sql)
        timer = threading.Timer(limits.timeout, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            return _fetch(con, statement, params, max_rows)
        except duckdb.InterruptException:
            raise QueryError(
                f"query stopped after {limits.timeout:g} s (setting sql_timeout, "
                "SHARDSCOPE_SQL_TIMEOUT): narrow it, or add a LIMIT"
            ) from None
        except duckdb.Error as exc:
            raise query_error(exc) from None
        finally:
            timer.cancel()


def read_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The one read statement in ``sql``, as DuckDB's own parser sees it, or QueryError."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise query_error(exc) from None
    if len(statements) != 1:
        raise QueryError(f"one statement at a time, got {len(statements)}")
    statement = statements[0]
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", statement.query, count=1)
        try:
            kinds = [s.type for s in con.extract_statements(inner)]
        except duckdb.Error as exc:
            raise query_error(exc) from None
        if kinds != [duckdb.StatementType.SELECT]:
            raise _refused(f"EXPLAIN of {', '.join(k.name for k in kinds)}")
    elif kind != duckdb.StatementType.SELECT:
        raise _refused(kind.name)
    return str(statement.query)


def _refused(kind: str) -> QueryError:
    why = ("queries cannot read or write files outside the store" if kind in _FILES
           else "queries cannot change the store (read-only)")
    return QueryError(f"{why}: {_READ}; got {kind}")


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None,
           max_rows: int | None) -> pa.Table:
    relation: duckdb.DuckDBPyRelation | None = (
        con.sql(sql, params=params) if params else con.sql(sql))
    if relation is None:  # no result set, whatever the stubs say
        return pa.table({})
    if max_rows is None:
        return relation.to_arrow_table()
    return relation.limit(max_rows).to_arrow_table()


def query_error(exc: duckdb.Error) -> QueryError:
    """A one-line, actionable message for a DuckDB error raised by user SQL."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    hint = next((h for key, h in _HINTS if key in first), None)
    return QueryError(f"{first}" + (f" ({hint})" if hint else ""))


@dataclass(frozen=True)
class ExampleQuery:
    title: str
    sql: str


EXAMPLE_QUERIES: tuple[ExampleQuery, ...] = (
    ExampleQuery("Success rate, steps, tokens and cost per model and scaffold", """
SELECT model, scaffold, count(*) AS episodes,
       round(avg((outcome = 'success')::INT), 3) AS success_rate,
       round(avg(steps), 1) AS mean_steps,
       sum(input_tokens + output_tokens) AS tokens,
       round(sum(cost_usd), 4) AS cost_usd
FROM episodes WHERE ablation_shard IS NULL
GROUP BY ALL ORDER BY success_rate DESC"""),
    ExampleQuery("How each model fails: outcomes per model", """
SELECT model, outcome, count(*) AS episodes
FROM episodes GROUP BY ALL ORDER BY model, episodes DESC"""),
    ExampleQuery("Which tools each model reaches for, and how often they fail", """
SELECT model, tool_name, count(*) AS calls, round(avg((NOT ok)::INT), 3) AS error_rate
FROM tool_calls GROUP BY ALL ORDER BY model, calls DESC"""),
    ExampleQuery("Tasks where models disagree", """
SELECT suite, task_id,
       string_agg(DISTINCT model || ': ' || outcome, ', ' ORDER BY model || ': ' || outcome) AS outcomes
FROM episodes WHERE ablation_shard IS NULL
GROUP BY suite, task_id HAVING count(DISTINCT outcome) > 1 ORDER BY suite, task_id"""),
    ExampleQuery("How each model breaks the protocol", """
SELECT model, protocol_error, count(*) AS steps
FROM steps WHERE protocol_error IS NOT NULL GROUP BY ALL ORDER BY steps DESC"""),
    ExampleQuery("Time to first token and decode speed per model", """
SELECT model, count(*) AS calls, median(time_to_first_token_s) AS ttft_s,
       median(tokens_per_second) AS tokens_per_s, median(duration_ms) AS call_ms
FROM llm_calls GROUP BY model ORDER BY model"""),
    ExampleQuery("The least confident tokens (needs --logprobs)", """
SELECT model, token, round(logprob, 3) AS logprob, episode_id, step_index
FROM token_events WHERE logprob IS NOT NULL ORDER BY logprob LIMIT 50"""),
    ExampleQuery("Retried and failed LLM calls: errors per model", """
SELECT model, error_type, count(*) AS attempts, max(attempt) AS max_attempt
FROM llm_attempts GROUP BY ALL ORDER BY attempts DESC"""),
)


def sql_result(store: Store, sql: str, max_rows: int = 10_000,
               limits: SqlLimits | None = None) -> tuple[pd.DataFrame, bool]:
    """User SQL through the sandboxed, read-only ``run_sql``: (rows, truncated)."""
    table = run_sql(store, sql, max_rows=max_rows + 1, limits=limits)
    truncated = table.num_rows > max_rows
    return table.slice(0, max_rows).to_pandas(), truncated
