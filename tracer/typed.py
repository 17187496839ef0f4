"""Typed rows derived from spans at ingest (schema v3): what the views read instead of JSON.

Every batch of spans written to the store also writes, in the same transaction, one typed row
per run marker, episode, step, LLM call and tool call (each attribute the views expose, parsed
once, cast to its type), and per batch the *partial* sums of each episode's and each step's
calls (``episode_sums``, ``step_sums``). The views add the partial sums up per episode: an
episode's children usually arrive in earlier batches than its own span (it ends last), and any
split of the spans into batches gives the same view rows. Nothing is ever updated, so the same
tables can be written as append-only Parquet files (a lake) by :func:`typed_tables`.

Spans another instrumentation sent to ``shardscope collect`` are placed in their episodes only
after the write (:mod:`shardscope.tracer.episodes`): :func:`rederive_traces` replaces the typed
rows of the traces that placement changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import duckdb
import pyarrow as pa

from shardscope.tracer import attributes as A
from shardscope.tracer.encoding import promoted_select_sql


class Attribute(NamedTuple):
    """A span attribute read as a column: its alias, key and the type it is cast to."""

    column: str
    key: str
    cast: str | None = None


def select_attributes(attributes: Sequence[Attribute], base: str, where: str,
                      source: str = "spans") -> str:
    """SELECT ``base`` columns of the spans of ``source`` matching ``where`` and these
    attributes, parsing each span's attribute JSON once (one ``->>`` per key would parse it
    once per key)."""
    paths = ", ".join(f"'$.\"{a.key}\"'" for a in attributes)
    columns = [f"TRY_CAST(_a[{i}] AS {a.cast}) AS {a.column}" if a.cast
               else f"_a[{i}] AS {a.column}" for i, a in enumerate(attributes, start=1)]
    return (f"SELECT {base}, {', '.join(columns)} FROM (SELECT *, json_extract_string("
            f"attributes, [{paths}]) AS _a FROM {source} WHERE {where})")


# --- the episode row, defined once ---------------------------------------------------------
# What an episode span says about its episode: these attributes, and the columns below (in the
# `episodes` view's order) over them and the span's own columns. `typed_episodes` holds exactly
# these (plus span_type: abandoned markers are kept too); the view adds the sums over the
# episode's LLM, tool and step spans (EPISODE_SUMS, after `steps`).
EPISODE_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("suite", A.SUITE_NAME), Attribute("task_id", A.TASK_ID),
    Attribute("scaffold", A.SCAFFOLD_NAME), Attribute("scaffold_hash", A.SCAFFOLD_HASH),
    Attribute("seed", A.SEED, "BIGINT"), Attribute("recorded_outcome", A.EPISODE_OUTCOME),
    Attribute("score", A.EPISODE_SCORE, "DOUBLE"),
    Attribute("recorded_steps", A.EPISODE_STEPS, "BIGINT"),
    Attribute("recorded_error", A.EPISODE_ERROR),
    Attribute("final_answer", A.EPISODE_FINAL_ANSWER), Attribute("episode_key", A.EPISODE_KEY),
    Attribute("ablation_shard", A.ABLATION_SHARD), Attribute("ablation_mode", A.ABLATION_MODE),
    Attribute("ablation_kind", A.ABLATION_KIND),
    Attribute("baseline_episode_key", A.ABLATION_BASELINE_KEY),
)
EPISODE_ROW: tuple[tuple[str, str, str], ...] = (  # (column, type, SQL over span + attributes)
    ("episode_id", "VARCHAR", "episode_id"), ("run_id", "VARCHAR", "run_id"),
    ("trace_id", "VARCHAR", "trace_id"), ("span_id", "VARCHAR", "span_id"),
    ("suite", "VARCHAR", "suite"), ("task_id", "VARCHAR", "task_id"),
    ("scaffold", "VARCHAR", "scaffold"), ("scaffold_hash", "VARCHAR", "scaffold_hash"),
    ("model", "VARCHAR", "model_id"), ("provider", "VARCHAR", "provider"),
    ("request_model", "VARCHAR", "request_model"), ("seed", "BIGINT", "seed"),
    ("outcome", "VARCHAR",
     "coalesce(recorded_outcome, CASE WHEN status_code = 'ERROR' THEN 'error' END)"),
    ("score", "DOUBLE", "score"),
    ("steps", "BIGINT", "recorded_steps"),  # NULL when the episode recorded none (it errored)
    ("duration_s", "DOUBLE", "duration_ms / 1000.0"),
    ("started_at", "TIMESTAMPTZ", "start_time"), ("ended_at", "TIMESTAMPTZ", "end_time"),
    ("error", "VARCHAR",
     "coalesce(recorded_error, CASE WHEN status_code = 'ERROR' THEN status_message END)"),
    ("final_answer", "VARCHAR", "final_answer"), ("episode_key", "VARCHAR", "episode_key"),
    ("ablation_shard", "VARCHAR", "ablation_shard"), ("ablation_mode", "VARCHAR", "ablation_mode"),
    ("ablation_kind", "VARCHAR", "ablation_kind"),
    ("baseline_episode_key", "VARCHAR", "baseline_episode_key"),
)
EPISODE_COLUMNS = tuple(name for name, _, _ in EPISODE_ROW)


@dataclass(frozen=True)
class TypedTable:
    """One typed table: its columns (name, SQL type) and the SELECT deriving its rows from a
    relation in the ``spans`` table's layout (``{source}`` in the text)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    select: str

    @property
    def ddl(self) -> str:
        cols = ", ".join(f"{name} {sql_type}" for name, sql_type in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"

    def sql(self, source: str) -> str:
        return self.select.replace("{source}", source)


@dataclass
class _Builder:
    """Columns over one JSON parse per span: ``attr`` gives the expression for a key."""

    keys: list[str] = field(default_factory=list)
    columns: list[tuple[str, str, str]] = field(default_factory=list)

    def attr(self, key: str, cast: str | None = None) -> str:
        if key not in self.keys:
            self.keys.append(key)
        value = f"_a[{self.keys.index(key) + 1}]"
        return f"TRY_CAST({value} AS {cast})" if cast else value

    def add(self, name: str, sql_type: str, expr: str | None = None) -> None:
        self.columns.append((name, sql_type, expr or name))

    def table(self, name: str, where: str) -> TypedTable:
        paths = ", ".join(f"'$.\"{key}\"'" for key in self.keys) or "'$.none'"
        cols = ", ".join(f"CAST({expr} AS {t}) AS {n}" for n, t, expr in self.columns)
        select = (f"SELECT {cols} FROM (SELECT *, json_extract_string(attributes, [{paths}]) "
                  f"AS _a FROM {{source}} WHERE {where})")
        return TypedTable(name, tuple((n, t) for n, t, _ in self.columns), select)


def _runs() -> TypedTable:
    b = _Builder()
    for name in ("run_id", "span_type", "trace_id", "span_id"):
        b.add(name, "VARCHAR")
    b.add("started_at", "TIMESTAMPTZ", "start_time")
    b.add("ended_at", "TIMESTAMPTZ", "end_time")
    b.add("planned_episodes", "BIGINT", b.attr(A.RUN_PLANNED_EPISODES, "BIGINT"))
    b.add("name", "VARCHAR", b.attr(A.RUN_NAME))
    b.add("config", "JSON", b.attr(A.RUN_CONFIG, "JSON"))
    b.add("status", "VARCHAR", b.attr(A.RUN_STATUS))
    b.add("writer_id", "VARCHAR")
    return b.table("typed_runs", "span_type IN ('run_start', 'run')")


def _episodes() -> TypedTable:
    b = _Builder()
    b.add("span_type", "VARCHAR")
    expressions = {a.column: b.attr(a.key, a.cast) for a in EPISODE_ATTRIBUTES}
    for name, sql_type, expr in EPISODE_ROW:
        for column, value in expressions.items():  # attribute aliases -> their expressions
            expr = _replace_word(expr, column, value)
        b.add(name, sql_type, expr)
    return b.table("typed_episodes", "span_type IN ('episode', 'abandoned_episode')")


def _replace_word(expr: str, word: str, value: str) -> str:
    return re.sub(rf"\b{re.escape(word)}\b", lambda _: value, expr)


def _steps() -> TypedTable:
    b = _Builder()
    for name, sql_type in (("episode_id", "VARCHAR"), ("run_id", "VARCHAR"),
                           ("step_index", "BIGINT"), ("trace_id", "VARCHAR"),
                           ("span_id", "VARCHAR")):
        b.add(name, sql_type)
    b.add("model", "VARCHAR", "model_id")
    b.add("input", "VARCHAR", b.attr(A.STEP_INPUT))
    b.add("output", "VARCHAR", b.attr(A.STEP_OUTPUT))
    action = b.attr(A.STEP_ACTION, "JSON")
    b.add("action", "JSON", action)
    b.add("action_type", "VARCHAR", f"{action}->>'$.type'")
    b.add("action_tool", "VARCHAR", f"{action}->>'$.tool'")
    b.add("protocol_error", "VARCHAR", b.attr(A.STEP_PROTOCOL_ERROR))
    b.add("status_code", "VARCHAR")
    b.add("started_at", "TIMESTAMPTZ", "start_time")
    b.add("duration_ms", "DOUBLE")
    return b.table("typed_steps", "span_type = 'step'")


_IDS = (("span_id", "VARCHAR"), ("trace_id", "VARCHAR"), ("parent_span_id", "VARCHAR"),
        ("run_id", "VARCHAR"), ("episode_id", "VARCHAR"), ("step_index", "BIGINT"))


def _llm_calls() -> TypedTable:
    b = _Builder()
    for name, sql_type in _IDS:
        b.add(name, sql_type)
    b.add("model", "VARCHAR", "model_id")
    for name in ("provider", "operation", "request_model", "response_model"):
        b.add(name, "VARCHAR")
    b.add("response_id", "VARCHAR", b.attr("gen_ai.response.id"))
    b.add("temperature", "DOUBLE", b.attr("gen_ai.request.temperature", "DOUBLE"))
    b.add("top_p", "DOUBLE", b.attr("gen_ai.request.top_p", "DOUBLE"))
    b.add("max_tokens", "BIGINT", b.attr("gen_ai.request.max_tokens", "BIGINT"))
    b.add("request_seed", "BIGINT", b.attr("gen_ai.request.seed", "BIGINT"))
    b.add("finish_reasons", "JSON", b.attr("gen_ai.response.finish_reasons", "JSON"))
    b.add("input_tokens", "BIGINT")
    b.add("output_tokens", "BIGINT")
    b.add("time_to_first_token_s", "DOUBLE",
          b.attr("gen_ai.response.time_to_first_chunk", "DOUBLE"))
    b.add("attempts", "INTEGER", f"coalesce({b.attr(A.LLM_ATTEMPTS, 'INTEGER')}, 1)")
    b.add("cost_usd", "DOUBLE", b.attr(A.LLM_COST_USD, "DOUBLE"))
    b.add("streamed", "BOOLEAN", b.attr(A.LLM_STREAMED, "BOOLEAN"))
    b.add("tokens_per_second", "DOUBLE", b.attr(A.LLM_TOKENS_PER_SECOND, "DOUBLE"))
    b.add("events_count", "INTEGER")
    for name in ("status_code", "status_message", "error_type"):
        b.add(name, "VARCHAR")
    b.add("started_at", "TIMESTAMPTZ", "start_time")
    b.add("duration_ms", "DOUBLE")
    for name, key in (("system_instructions", "gen_ai.system_instructions"),
                      ("input_messages", "gen_ai.input.messages"),
                      ("output_messages", "gen_ai.output.messages"),
                      ("tool_call_errors", A.LLM_TOOL_CALL_ERRORS),
                      ("raw_request", A.LLM_RAW_REQUEST), ("raw_response", A.LLM_RAW_RESPONSE)):
        b.add(name, "JSON", b.attr(key, "JSON"))
    return b.table("typed_llm_calls", "span_type = 'llm_call'")


def _tool_calls() -> TypedTable:
    b = _Builder()
    for name, sql_type in _IDS:
        b.add(name, sql_type)
    b.add("model", "VARCHAR", "model_id")
    b.add("tool_name", "VARCHAR")
    b.add("call_id", "VARCHAR", b.attr("gen_ai.tool.call.id"))
    b.add("arguments", "VARCHAR", b.attr("gen_ai.tool.call.arguments"))
    b.add("result", "VARCHAR", b.attr("gen_ai.tool.call.result"))
    b.add("ok", "BOOLEAN",
          f"coalesce({b.attr(A.TOOL_OK, 'BOOLEAN')}, status_code <> 'ERROR')")
    b.add("error_type", "VARCHAR")
    b.add("error_message", "VARCHAR", f"coalesce({b.attr(A.TOOL_ERROR_MESSAGE)}, "
          "CASE WHEN status_code = 'ERROR' THEN status_message END)")
    b.add("truncated", "BOOLEAN", b.attr(A.TOOL_TRUNCATED, "BOOLEAN"))
    b.add("status_code", "VARCHAR")
    b.add("started_at", "TIMESTAMPTZ", "start_time")
    b.add("duration_ms", "DOUBLE")
    return b.table("typed_tool_calls", "span_type = 'tool_call'")


_COST = f"TRY_CAST(attributes->>'$.\"{A.LLM_COST_USD}\"' AS DOUBLE)"
_LLM, _TOOL = "span_type = 'llm_call'", "span_type = 'tool_call'"
_EPISODE_SUMS = TypedTable(
    "episode_sums",
    (("episode_id", "VARCHAR"), ("trace_id", "VARCHAR"), ("llm_calls", "BIGINT"),
     ("llm_errors", "BIGINT"), ("input_tokens", "BIGINT"), ("output_tokens", "BIGINT"),
     ("cost_usd", "DOUBLE"), ("tool_calls", "BIGINT"), ("tool_errors", "BIGINT"),
     ("step_spans", "BIGINT")),
    "SELECT episode_id, trace_id, "
    f"CAST(count(*) FILTER (WHERE {_LLM}) AS BIGINT) AS llm_calls, "
    f"CAST(count(*) FILTER (WHERE {_LLM} AND status_code = 'ERROR') AS BIGINT) AS llm_errors, "
    f"CAST(sum(input_tokens) FILTER (WHERE {_LLM}) AS BIGINT) AS input_tokens, "
    f"CAST(sum(output_tokens) FILTER (WHERE {_LLM}) AS BIGINT) AS output_tokens, "
    f"CAST(sum({_COST}) FILTER (WHERE {_LLM}) AS DOUBLE) AS cost_usd, "
    f"CAST(count(*) FILTER (WHERE {_TOOL}) AS BIGINT) AS tool_calls, "
    f"CAST(count(*) FILTER (WHERE {_TOOL} AND status_code = 'ERROR') AS BIGINT) AS tool_errors, "
    "CAST(count(*) FILTER (WHERE span_type = 'step') AS BIGINT) AS step_spans "
    "FROM {source} WHERE span_type IN ('llm_call', 'tool_call', 'step') "
    "AND episode_id IS NOT NULL GROUP BY episode_id, trace_id",
)
_STEP_SUMS = TypedTable(
    "step_sums",
    (("episode_id", "VARCHAR"), ("step_index", "BIGINT"), ("trace_id", "VARCHAR"),
     ("llm_calls", "BIGINT"), ("input_tokens", "BIGINT"), ("output_tokens", "BIGINT"),
     ("tool_calls", "BIGINT")),
    "SELECT episode_id, step_index, trace_id, "
    f"CAST(count(*) FILTER (WHERE {_LLM}) AS BIGINT) AS llm_calls, "
    f"CAST(sum(input_tokens) FILTER (WHERE {_LLM}) AS BIGINT) AS input_tokens, "
    f"CAST(sum(output_tokens) FILTER (WHERE {_LLM}) AS BIGINT) AS output_tokens, "
    f"CAST(count(*) FILTER (WHERE {_TOOL}) AS BIGINT) AS tool_calls "
    "FROM {source} WHERE span_type IN ('llm_call', 'tool_call') AND episode_id IS NOT NULL "
    "AND step_index IS NOT NULL GROUP BY episode_id, step_index, trace_id",
)

TABLES: dict[str, TypedTable] = {
    t.name: t for t in (_runs(), _episodes(), _steps(), _llm_calls(), _tool_calls(),
                        _EPISODE_SUMS, _STEP_SUMS)
}
TYPED_TABLES = tuple(TABLES)
TABLES_DDL = ";\n".join(t.ddl for t in TABLES.values()) + ";"

_BATCH = "_shardscope_typed_batch"


def promote(batch: pa.Table, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """A batch as :class:`shardscope.tracer.encoding.SpanBatch` (or the OTLP decoder) makes it,
    with the promoted columns the ``spans`` table stores (span_type, run_id, episode_id, ...)."""
    own = con is None
    con = con or duckdb.connect()
    con.register(_BATCH, batch)
    try:
        return con.sql(promoted_select_sql(_BATCH)).to_arrow_table()
    finally:
        con.unregister(_BATCH)
        if own:
            con.close()


def typed_tables(spans: pa.Table, con: duckdb.DuckDBPyConnection | None = None
                 ) -> dict[str, pa.Table]:
    """The typed rows of one batch of spans, per table (keys: :data:`TYPED_TABLES`).

    ``spans`` is either a raw batch (attributes as JSON text, as ``SpanBatch.tables()`` gives
    it) or already in the ``spans`` table's layout (``promote``). Sums are partial: the views
    add them up per episode, so batches may split an episode anywhere."""
    own = con is None
    con = con or duckdb.connect()
    con.register(_BATCH, spans)
    try:
        source = _BATCH if "span_type" in spans.column_names else f"({promoted_select_sql(_BATCH)})"
        return {name: con.sql(t.sql(source)).to_arrow_table() for name, t in TABLES.items()}
    finally:
        con.unregister(_BATCH)
        if own:
            con.close()


def insert_typed(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Insert the typed rows of ``source`` (a relation in the ``spans`` layout) into the
    store's typed tables, inside the caller's transaction."""
    for name, table in TABLES.items():
        con.execute(f"INSERT INTO {name} BY NAME {table.sql(source)}")


def rederive_traces(con: duckdb.DuckDBPyConnection, trace_ids: Iterable[str]) -> None:
    """Replace the typed rows of these traces by rows derived from their stored spans (after
    the collector settled which episode each foreign span belongs to)."""
    ids = sorted(set(trace_ids))
    if not ids:
        return
    con.register("_shardscope_rederive", pa.table({"trace_id": pa.array(ids, pa.string())}))
    try:
        chosen = "trace_id IN (SELECT trace_id FROM _shardscope_rederive)"
        for name in TABLES:
            con.execute(f"DELETE FROM {name} WHERE {chosen}")
        insert_typed(con, f"(SELECT * FROM spans WHERE {chosen})")
    finally:
        con.unregister("_shardscope_rederive")


BACKFILL_ROWS = 100_000


def backfill(con: duckdb.DuckDBPyConnection,
             progress: Callable[[int, int], None] | None = None) -> int:
    """Derive the typed rows of every stored span (a store migrating to v3), ``BACKFILL_ROWS``
    spans at a time; ``progress(done, total)`` after each chunk. Returns the spans read."""
    row = con.execute("SELECT count(*), min(rowid), max(rowid) FROM spans").fetchone()
    total, low, high = (int(row[0]), row[1], row[2]) if row and row[0] else (0, 0, -1)
    done = 0
    if progress:
        progress(0, total)
    for start in range(int(low), int(high) + 1, BACKFILL_ROWS):
        end = start + BACKFILL_ROWS - 1
        insert_typed(con, f"(SELECT * FROM spans WHERE rowid BETWEEN {start} AND {end})")
        done = min(total, done + BACKFILL_ROWS)
        if progress:
            progress(done, total)
    return total
