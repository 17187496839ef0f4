"""SQL typed by a user (``shardscope query``, the app's SQL console): run read-only and
sandboxed (no file access), with DuckDB's errors turned into one actionable line, and the
console's example questions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from shardscope.config.errors import QueryError
from shardscope.tracer.store import Store

_HINTS = (
    ("Catalog Error", "run `shardscope query --schema` for the tables and views"),
    ("Binder Error", "run `shardscope query --schema` for the columns of each view"),
    ("read-only mode", "queries cannot change the store"),
    ("Permission Error", "queries cannot read or write files outside the store"),
)


def run_sql(
    store: Store, sql: str, params: list[Any] | None = None, *, max_rows: int | None = None
) -> pa.Table:
    """Run user SQL read-only and sandboxed (no file access); errors become QueryError."""
    if not sql or not sql.strip():
        raise QueryError("empty query: pass a SQL statement, e.g. \"SELECT * FROM episodes\"")
    with store.reader(sandboxed=True) as con:
        try:
            relation: duckdb.DuckDBPyRelation | None = (
                con.sql(sql, params=params) if params else con.sql(sql))
            if relation is None:  # no result set (SET, PRAGMA ...), whatever the stubs say
                return pa.table({})
            if max_rows is None:
                return relation.to_arrow_table()
            return relation.limit(max_rows).to_arrow_table()
        except duckdb.Error as exc:
            raise query_error(exc) from None


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


def sql_result(store: Store, sql: str, max_rows: int = 10_000) -> tuple[pd.DataFrame, bool]:
    """User SQL through the sandboxed, read-only ``run_sql``: (rows, truncated)."""
    table = run_sql(store, sql, max_rows=max_rows + 1)
    truncated = table.num_rows > max_rows
    return table.slice(0, max_rows).to_pandas(), truncated
