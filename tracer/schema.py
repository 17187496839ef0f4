"""The store's schema: tables, views users query, the schema version and its migrations.

Raw spans and span events are kept whole (attributes as JSON); the attributes comparisons
filter on are promoted to typed columns at ingest. Views are the public, documented surface:
users, the CLI and the UI query them, never the JSON directly unless they want to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import duckdb

from shardscope.config.errors import StoreVersionError
from shardscope.tracer.typed import (  # noqa: F401  (the episode row's home is typed.py)
    EPISODE_ATTRIBUTES,
    EPISODE_COLUMNS,
    EPISODE_ROW,
    TABLES,
    TABLES_DDL,
    Attribute,
    backfill,
    select_attributes,
)

SCHEMA_VERSION = 3

TABLES_V1 = """
CREATE TABLE IF NOT EXISTS shardscope_meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS spans (
    trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR,
    name VARCHAR, kind VARCHAR, span_type VARCHAR,
    start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, start_ns BIGINT, end_ns BIGINT,
    duration_ms DOUBLE, status_code VARCHAR, status_message VARCHAR,
    run_id VARCHAR, episode_id VARCHAR, step_index BIGINT,
    operation VARCHAR, provider VARCHAR, request_model VARCHAR, response_model VARCHAR,
    model_id VARCHAR, tool_name VARCHAR, input_tokens BIGINT, output_tokens BIGINT,
    error_type VARCHAR, attributes JSON, events_count INTEGER, links JSON, resource JSON,
    scope_name VARCHAR, scope_version VARCHAR,
    dropped_attributes INTEGER, dropped_events INTEGER, dropped_links INTEGER,
    writer_id VARCHAR
);
CREATE TABLE IF NOT EXISTS span_events (
    trace_id VARCHAR, span_id VARCHAR, seq INTEGER, name VARCHAR,
    time TIMESTAMPTZ, time_ns BIGINT, attributes JSON, dropped_attributes INTEGER
);
CREATE TABLE IF NOT EXISTS writer_stats (
    writer_id VARCHAR, pid INTEGER, host VARCHAR, service_name VARCHAR,
    started_at TIMESTAMPTZ, recorded_at TIMESTAMPTZ,
    spans_written BIGINT, events_written BIGINT, batches BIGINT,
    backpressure_waits BIGINT, backpressure_seconds DOUBLE,
    write_errors BIGINT, spilled_spans BIGINT, recovered_spans BIGINT,
    lost_spans BIGINT, sdk_dropped_attributes BIGINT, sdk_dropped_events BIGINT,
    sdk_dropped_links BIGINT, secondary_dropped_spans BIGINT, last_error VARCHAR
);
CREATE TABLE IF NOT EXISTS ingested_spills (file VARCHAR, spans BIGINT, ingested_at TIMESTAMPTZ);
"""

# Version 2: what an OTLP span carries beyond the SDK's own spans (kept for spans received by
# `shardscope collect`; NULL for spans a shardscope process wrote itself), and OTLP log records
# (GenAI content events arrive as logs), joined to their span by (trace_id, span_id).
TABLES_V2 = """
ALTER TABLE spans ADD COLUMN IF NOT EXISTS trace_state VARCHAR;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS flags BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS resource_schema_url VARCHAR;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS resource_dropped_attributes INTEGER;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS scope_schema_url VARCHAR;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS scope_attributes JSON;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS scope_dropped_attributes INTEGER;
CREATE TABLE IF NOT EXISTS log_events (
    trace_id VARCHAR, span_id VARCHAR, event_name VARCHAR,
    time TIMESTAMPTZ, time_ns BIGINT, observed_time_ns BIGINT,
    severity_number INTEGER, severity_text VARCHAR, body JSON, attributes JSON,
    flags BIGINT, dropped_attributes INTEGER,
    resource JSON, resource_schema_url VARCHAR,
    scope_name VARCHAR, scope_version VARCHAR, scope_attributes JSON, scope_schema_url VARCHAR,
    record_id VARCHAR, writer_id VARCHAR
);
"""


# Version 3: typed rows derived from the spans at ingest (tracer/typed.py): the views read
# these, never the attribute JSON, so a read costs what its rows cost, not what every span's
# attributes cost to parse. A v2 store is back-filled in place (with a progress bar).
TABLES_V3 = TABLES_DDL

EPISODE_ROW_SQL = (f"SELECT {', '.join(EPISODE_COLUMNS)} FROM typed_episodes "
                   "WHERE span_type = 'episode'")
EPISODE_SUMS: tuple[tuple[str, str], ...] = (  # the view's columns from the episode's other spans
    ("llm_calls", "coalesce(x.llm_calls, 0)"), ("input_tokens", "coalesce(x.input_tokens, 0)"),
    ("output_tokens", "coalesce(x.output_tokens, 0)"), ("cost_usd", "x.cost_usd"),
    ("tool_calls", "coalesce(x.tool_calls, 0)"), ("tool_errors", "coalesce(x.tool_errors, 0)"),
)
# An episode's partial sums (one row per batch that held some of its calls), added up.
_SUMS = """
SELECT episode_id, CAST(sum(llm_calls) AS BIGINT) AS llm_calls,
       CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
       CAST(sum(output_tokens) AS BIGINT) AS output_tokens, sum(cost_usd) AS cost_usd,
       CAST(sum(llm_errors) AS BIGINT) AS llm_errors, CAST(sum(tool_calls) AS BIGINT) AS tool_calls,
       CAST(sum(tool_errors) AS BIGINT) AS tool_errors, CAST(sum(step_spans) AS BIGINT) AS steps
FROM episode_sums GROUP BY episode_id"""


def _episode_view_columns() -> str:
    columns = []
    for name in EPISODE_COLUMNS:
        if name == "steps":  # where the episode recorded none, its step spans are counted
            columns.append("coalesce(e.steps, x.steps, 0) AS steps")
            columns += [f"{sql} AS {column}" for column, sql in EPISODE_SUMS]
        else:
            columns.append(f"e.{name}")
    return ",\n       ".join(columns)


# An attempt abandoned (interrupted, or its process killed) keeps its spans in `spans`; the
# views below leave them out. An id is abandoned when an `abandoned_episode` marker names it
# and no episode span does (a marker never hides an attempt that did finish).
_ABANDONED = (
    "SELECT episode_id FROM typed_episodes WHERE span_type = 'abandoned_episode' "
    "AND episode_id IS NOT NULL EXCEPT SELECT episode_id FROM typed_episodes "
    "WHERE span_type = 'episode' AND episode_id IS NOT NULL"
)


def _kept(table: str = "") -> str:
    """The condition that keeps a row of an attempt that was not abandoned."""
    column = f"{table}episode_id"
    return f"({column} IS NULL OR {column} NOT IN ({_ABANDONED}))"


# The episode's context on every per-episode view (steps, llm_calls, tool_calls, messages,
# token_events, llm_attempts), so a question needs no join to `episodes` and ablated episodes
# can be told from their baselines (without it the README's tool query counted them twice).
# One row per episode id: the latest episode span, should a writer ever record two. Joined at
# read time (20k rows for 1M spans): a call is written before its episode span ends.
CONTEXT_COLUMNS = ("suite", "task_id", "scaffold", "scaffold_hash", "seed", "ablation_shard",
                   "ablation_mode")
_CONTEXT_CTE = (
    "ctx AS (SELECT episode_id, " + ", ".join(f"{c} AS ctx_{c}" for c in CONTEXT_COLUMNS)
    + f" FROM ({EPISODE_ROW_SQL}) "
    "QUALIFY row_number() OVER (PARTITION BY episode_id ORDER BY ended_at DESC NULLS LAST) = 1)"
)


def _context(table: str = "c.") -> str:
    return ", ".join(f"{table}ctx_{c} AS {c}" for c in CONTEXT_COLUMNS)


def _typed_columns(table: str, alias: str, *, context_after: str, skip: Sequence[str] = ()) -> str:
    """The typed table's columns in order, the context columns after ``context_after``."""
    columns = []
    for name, _ in TABLES[table].columns:
        if name in skip:
            continue
        columns.append(f"{alias}{name}")
        if name == context_after:
            columns.append(_context())
    return ", ".join(columns)


# A run with no end is `stale` once the process writing it has been silent this long. Every
# writer records a `writer_stats` row with each batch and, when it has nothing to write, a
# heartbeat every tracer.sinks.HEARTBEAT_S (10 s); six missed heartbeats mean it is gone.
STALE_AFTER_S = 60

_TOKEN_CONTEXT = "c.run_id, c.episode_id, c.step_index, c.model"

VIEWS: dict[str, str] = {
    "episodes": f"""
SELECT {_episode_view_columns()}
FROM typed_episodes e
LEFT JOIN ({_SUMS}) x USING (episode_id)
WHERE e.span_type = 'episode'
""",
    "steps": f"""
WITH sums AS (
    SELECT episode_id, step_index, CAST(sum(llm_calls) AS BIGINT) AS llm_calls,
           CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
           CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
           CAST(sum(tool_calls) AS BIGINT) AS tool_calls
    FROM step_sums GROUP BY episode_id, step_index),
{_CONTEXT_CTE}
SELECT s.episode_id, s.run_id, s.step_index, s.trace_id, s.span_id, s.model, {_context()},
       s.input, s.output, s.action, s.action_type, s.action_tool, s.protocol_error,
       coalesce(l.llm_calls, 0) AS llm_calls,
       coalesce(l.input_tokens, 0) AS input_tokens,
       coalesce(l.output_tokens, 0) AS output_tokens,
       coalesce(l.tool_calls, 0) AS tool_calls,
       s.status_code, s.started_at, s.duration_ms
FROM typed_steps s
LEFT JOIN sums l USING (episode_id, step_index)
LEFT JOIN ctx c ON c.episode_id = s.episode_id
WHERE {_kept("s.")}
""",
    "llm_calls": f"""
WITH {_CONTEXT_CTE}
SELECT {_typed_columns("typed_llm_calls", "s.", context_after="model")}
FROM typed_llm_calls s LEFT JOIN ctx c ON c.episode_id = s.episode_id
WHERE {_kept("s.")}
""",
    "tool_calls": f"""
WITH {_CONTEXT_CTE}
SELECT {_typed_columns("typed_tool_calls", "s.", context_after="model")}
FROM typed_tool_calls s LEFT JOIN ctx c ON c.episode_id = s.episode_id
WHERE {_kept("s.")}
""",
    "messages": f"""
WITH calls AS (
    SELECT span_id, trace_id, run_id, episode_id, step_index, model, started_at,
           input_messages AS input_json, output_messages AS output_json
    FROM typed_llm_calls WHERE {_kept()}),
flat AS (
    SELECT c.*, 'input' AS direction, m.message, m.position
    FROM calls c, unnest(json_extract(c.input_json, '$[*]')) WITH ORDINALITY AS m(message, position)
    UNION ALL
    SELECT c.*, 'output' AS direction, m.message, m.position
    FROM calls c, unnest(json_extract(c.output_json, '$[*]')) WITH ORDINALITY AS m(message, position)),
{_CONTEXT_CTE}
SELECT span_id, trace_id, run_id, f.episode_id, step_index, model, {_context()},
       direction,
       position - 1 AS position, message->>'$.role' AS role,
       array_to_string(list_transform(
           list_filter(json_extract(message, '$.parts[*]'), lambda p: p->>'$.type' = 'text'),
           lambda p: p->>'$.content'), '') AS text,
       message->'$.parts' AS parts,
       message->>'$.finish_reason' AS finish_reason,
       started_at
FROM flat f LEFT JOIN ctx c ON c.episode_id = f.episode_id
""",
    # Token and attempt events are on LLM call spans: their context is the call's typed row.
    "token_events": f"""
WITH {_CONTEXT_CTE}
SELECT e.span_id, e.trace_id, s.run_id, s.episode_id, s.step_index, s.model,
       {_context()},
       TRY_CAST(e.attributes->>'$."shardscope.token.index"' AS INTEGER) AS token_index,
       e.attributes->>'$."shardscope.token.text"' AS token,
       TRY_CAST(e.attributes->>'$."shardscope.token.offset_ms"' AS DOUBLE) AS offset_ms,
       TRY_CAST(e.attributes->>'$."shardscope.token.logprob"' AS DOUBLE) AS logprob,
       TRY_CAST(e.attributes->>'$."shardscope.token.top_logprobs"' AS JSON) AS top_logprobs,
       e.time
FROM span_events e JOIN typed_llm_calls s ON s.span_id = e.span_id AND s.trace_id = e.trace_id
LEFT JOIN ctx c ON c.episode_id = s.episode_id
WHERE e.name = 'shardscope.token' AND {_kept("s.")}
""",
    "llm_attempts": f"""
WITH {_CONTEXT_CTE}
SELECT e.span_id, e.trace_id, s.run_id, s.episode_id, s.step_index, s.model,
       {_context()},
       TRY_CAST(e.attributes->>'$."shardscope.attempt.number"' AS INTEGER) AS attempt,
       e.attributes->>'$."error.type"' AS error_type,
       e.attributes->>'$."shardscope.attempt.error_message"' AS error_message,
       TRY_CAST(e.attributes->>'$."shardscope.attempt.status_code"' AS INTEGER) AS status_code,
       TRY_CAST(e.attributes->>'$."shardscope.attempt.retry_after_s"' AS DOUBLE) AS retry_after_s,
       TRY_CAST(e.attributes->>'$."shardscope.attempt.wait_s"' AS DOUBLE) AS wait_s,
       TRY_CAST(e.attributes->>'$."shardscope.attempt.duration_ms"' AS DOUBLE) AS duration_ms,
       e.time
FROM span_events e JOIN typed_llm_calls s ON s.span_id = e.span_id AND s.trace_id = e.trace_id
LEFT JOIN ctx c ON c.episode_id = s.episode_id
WHERE e.name = 'shardscope.attempt.failed' AND {_kept("s.")}
""",
    "runs": f"""
WITH starts AS (
    SELECT run_id, min(started_at) AS started_at, max(started_at) AS last_started_at,
           max(planned_episodes) AS planned, count(*) AS starts,
           arg_max(name, started_at) AS name, arg_max(config, started_at) AS config,
           arg_max(writer_id, started_at) AS writer_id  -- the process writing it now
    FROM typed_runs WHERE span_type = 'run_start' GROUP BY run_id),
ends AS (
    SELECT run_id, max(ended_at) AS ended_at, arg_max(status, ended_at) AS status
    FROM typed_runs WHERE span_type = 'run' GROUP BY run_id),
eps AS (
    SELECT run_id, count(*) AS episodes,
           count(*) FILTER (WHERE outcome = 'success') AS successes,
           count(*) FILTER (WHERE outcome = 'error') AS errors,
           max(ended_at) AS last_episode_at
    FROM typed_episodes WHERE span_type = 'episode' GROUP BY run_id),
writers AS (
    SELECT writer_id, max(recorded_at) AS heard_at FROM writer_stats GROUP BY writer_id)
SELECT s.run_id, s.name, s.started_at, e.ended_at,
       CASE WHEN e.ended_at >= s.last_started_at THEN coalesce(e.status, 'finished')
            WHEN coalesce(w.heard_at, greatest(s.last_started_at, x.last_episode_at))
                 < now() - INTERVAL {STALE_AFTER_S} SECOND THEN 'stale'
            ELSE 'running' END AS status,
       s.planned AS planned_episodes, coalesce(x.episodes, 0) AS completed_episodes,
       coalesce(x.successes, 0) AS successes, coalesce(x.errors, 0) AS errors,
       greatest(s.last_started_at, x.last_episode_at, e.ended_at) AS last_activity_at,
       s.starts - 1 AS resumes, s.config,
       w.heard_at AS writer_heard_at
FROM starts s LEFT JOIN ends e USING (run_id) LEFT JOIN eps x USING (run_id)
LEFT JOIN writers w ON w.writer_id = s.writer_id
""",
}

# Descriptions for `shardscope query --schema`, COMMENT ON, and docs/store.md.
DESCRIPTIONS: dict[str, str] = {
    "spans": "Every span, raw: ids, timing, status, promoted typed columns, attributes as JSON. "
    "trace_state, flags, resource_schema_url, scope_schema_url, scope_attributes and the "
    "resource/scope dropped counts are set for spans received by `shardscope collect`.",
    "log_events": "OTLP log records received by `shardscope collect` (GenAI content events such "
    "as gen_ai.user.message, gen_ai.choice, gen_ai.client.inference.operation.details): "
    "event_name, body and attributes as JSON; join to spans on (trace_id, span_id), in "
    "either order of arrival. record_id makes a re-sent record count once.",
    "span_events": "Every span event (token stream, failed retry attempts, exceptions).",
    "writer_stats": "Per writer process, a row with each batch and a heartbeat row every 10 s "
    "when it has nothing to write: spans written, backpressure, errors, spills, drops.",
    "ingested_spills": "Spill files (written when the store was unreachable) already ingested.",
    "shardscope_meta": "Schema version and store metadata.",
    "typed_runs": "Typed rows of the run markers (run_start, run), derived at ingest: what the "
    "runs view reads.",
    "typed_episodes": "Typed rows of the episode spans (and abandoned_episode markers), derived "
    "at ingest: what the episodes view and every view's episode context read.",
    "typed_steps": "Typed rows of the step spans, derived at ingest (the steps view).",
    "typed_llm_calls": "Typed rows of the LLM call spans, derived at ingest (llm_calls, messages, "
    "token_events, llm_attempts).",
    "typed_tool_calls": "Typed rows of the tool call spans, derived at ingest (tool_calls).",
    "episode_sums": "Per batch of spans written, each episode's partial sums (LLM calls, "
    "tokens, cost, tool calls, errors, step spans); the episodes view adds them up.",
    "step_sums": "Per batch of spans written, each step's partial sums (LLM calls, tokens, tool "
    "calls); the steps view adds them up.",
    "episodes": "One row per task attempt: suite, task, scaffold (+hash), model, seed, outcome, "
    "score, steps, tokens, cost, duration, error.",
    "steps": "One row per scaffold loop iteration: what went in, what came out, the action. "
    "Here and in the five views below, attempts abandoned unfinished (an abandoned_episode "
    "marker, no episode) are left out; their spans stay in spans; and every row carries its "
    "episode's context: run_id, model, suite, task_id, scaffold, scaffold_hash, seed, "
    "ablation_shard, ablation_mode (NULL outside ablations: WHERE ablation_shard IS NULL "
    "keeps baselines only).",
    "llm_calls": "One row per logical LLM call (chat span) with GenAI attributes and messages.",
    "tool_calls": "One row per tool execution: tool, arguments, result, ok/error.",
    "messages": "Input and output messages of every LLM call, one row per message.",
    "token_events": "Streamed tokens of every LLM call: offset, text, logprob, top alternatives.",
    "llm_attempts": "Failed attempts of LLM calls that were retried (or failed for good).",
    "runs": "One row per run of the matrix runner: planned vs completed episodes, status: "
    "finished, interrupted (Ctrl-C, SIGTERM), running, or stale (no end and the process "
    f"writing it silent for over {STALE_AFTER_S} s: it died; `shardscope run --resume` "
    "finishes it); writer_heard_at: when that process last wrote to the store.",
}


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    for name, sql in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    for name, text in DESCRIPTIONS.items():
        kind = "VIEW" if name in VIEWS else "TABLE"
        con.execute(f"COMMENT ON {kind} {name} IS '{text.replace(chr(39), chr(39) * 2)}'")


# progress(done, total) while a migration back-fills rows (the store shows a progress bar).
Progress = Callable[[int, int], None]


def _migrate_to_1(con: duckdb.DuckDBPyConnection, progress: Progress | None) -> None:
    con.execute(TABLES_V1)


def _migrate_to_2(con: duckdb.DuckDBPyConnection, progress: Progress | None) -> None:
    con.execute(TABLES_V2)


def _migrate_to_3(con: duckdb.DuckDBPyConnection, progress: Progress | None) -> None:
    con.execute(TABLES_V3)
    backfill(con, progress)


# MIGRATIONS[n] brings a store at version n-1 to version n. Views are always recreated.
MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection, Progress | None], None]] = {
    1: _migrate_to_1,
    2: _migrate_to_2,
    3: _migrate_to_3,
}


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every table at SCHEMA_VERSION, without views or metadata (benchmarks' raw baselines)."""
    for target in range(1, SCHEMA_VERSION + 1):
        MIGRATIONS[target](con, None)


def stored_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open store; 0 for an empty database file."""
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'shardscope_meta' "
        "AND database_name = current_database()"
    ).fetchone()
    if not has_meta or not has_meta[0]:
        return 0
    row = con.execute("SELECT value FROM shardscope_meta WHERE key = 'schema_version'").fetchone()
    if not row:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise StoreVersionError(
            f"store has schema version {row[0]!r}, which is not a version number: the file is "
            "damaged or was not written by shardscope; point --db at another store") from None


def check_readable(version: int, path: object) -> None:
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"store {path} has schema version {version}, newer than this shardscope "
            f"understands ({SCHEMA_VERSION}); upgrade shardscope (pip install -U shardscope)"
        )


VIEWS_HASH = hashlib.sha256(
    json.dumps([VIEWS, DESCRIPTIONS], sort_keys=True).encode("utf-8")
).hexdigest()[:16]


def _stored_views_hash(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("SELECT value FROM shardscope_meta WHERE key = 'views_hash'").fetchone()
    return row[0] if row else None


def _refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """Views are code, not data: a writer with other view definitions replaces them."""
    con.execute("BEGIN TRANSACTION")
    try:
        _create_views(con)
        con.execute("DELETE FROM shardscope_meta WHERE key = 'views_hash'")
        con.execute("INSERT INTO shardscope_meta VALUES ('views_hash', ?)", [VIEWS_HASH])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def migrate(con: duckdb.DuckDBPyConnection, path: object, writer_version: str,
            progress: Progress | None = None) -> int:
    """Bring the store to SCHEMA_VERSION inside one transaction (all or nothing: an interrupted
    migration leaves the store as it was); returns the old version."""
    version = stored_version(con)
    check_readable(version, path)
    if version == SCHEMA_VERSION:
        if _stored_views_hash(con) != VIEWS_HASH:
            _refresh_views(con)
        return version
    con.execute("BEGIN TRANSACTION")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](con, progress if version else None)
        _create_views(con)
        con.execute(
            "DELETE FROM shardscope_meta WHERE key IN ('schema_version', 'written_by', 'views_hash')"
        )
        con.execute(
            "INSERT INTO shardscope_meta VALUES ('schema_version', ?), ('written_by', ?), "
            "('views_hash', ?)",
            [str(SCHEMA_VERSION), writer_version, VIEWS_HASH],
        )
        if version == 0:
            con.execute("INSERT INTO shardscope_meta VALUES ('created_at', CAST(now() AS VARCHAR))")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return version
