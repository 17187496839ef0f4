"""Episodes of traces that other instrumentations made, settled in the store after each write.

A span from another instrumentation carries no ``shardscope.episode.id``: its episode is the
outermost ``invoke_agent`` / AGENT span among its ancestors, else (a trace with no agent span
but with model or tool calls) the trace's root. That is a property of the trace, not of one
span, and an SDK exports children before their parents, in separate requests; so after every
transaction the collector re-derives, for each trace the transaction touched, every foreign
span's ``span_type`` / ``episode_id`` (and an episode's model and provider from its LLM calls
when its agent span names none), and updates the rows that changed.

Why at ingest and not in the views: the views are read far more often than traces are
written, and a recursive walk over every span on every read would make each query pay for
all the traces ever stored; here a write pays once for the traces it touched (a scan of the
``trace_id`` column, then the walk over those traces' spans only). Re-deriving the whole trace
each time makes the result independent of arrival order: the same spans give the same rows
whichever came first, and a re-sent span changes nothing.

GenAI content sent as OTLP log records (``log_events``) is merged into its LLM span's
``gen_ai.input.messages`` / ``gen_ai.output.messages`` the same way, whichever arrived first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from shardscope.tracer import attributes as A
from shardscope.tracer import semantic
from shardscope.tracer.typed import rederive_traces

_T = "_shardscope_traces"
_C = "_shardscope_changes"

# Foreign spans of the touched traces: shardscope's own spans (which name their type and were
# not mapped) are left alone.
_FOREIGN = f"""
SELECT trace_id, span_id, parent_span_id, name, start_ns, span_type, episode_id, model_id,
       provider, _a[1] AS kind, _a[2] AS given_episode, _a[3] AS own_model,
       _a[4] AS own_provider, _a[6] AS own_scaffold
FROM (SELECT trace_id, span_id, parent_span_id, name, start_ns, span_type, episode_id, model_id,
             provider, json_extract_string(attributes, ['$."{A.SPAN_TYPE}"',
             '$."{A.EPISODE_ID}"', '$."{A.MODEL_ID}"', '$."{A.GEN_AI_PROVIDER_NAME}"',
             '$."{A.MAPPED_CONVENTION}"', '$."{A.SCAFFOLD_NAME}"']) AS _a
      FROM spans WHERE trace_id IN (SELECT trace_id FROM {_T}))
WHERE _a[5] IS NOT NULL OR _a[1] IS NULL
"""

_RESOLVE = f"""
WITH RECURSIVE t AS ({_FOREIGN}),
up(trace_id, span_id, ancestor, depth) AS (
    SELECT trace_id, span_id, span_id, 0 FROM t
    UNION ALL
    SELECT u.trace_id, u.span_id, p.parent_span_id, u.depth + 1
    FROM up u JOIN t p ON p.trace_id = u.trace_id AND p.span_id = u.ancestor
    WHERE p.parent_span_id IS NOT NULL AND u.depth < 512),
chain AS (
    SELECT u.trace_id, u.span_id, u.depth, a.span_id AS anc, a.kind AS anc_kind,
           a.parent_span_id IS NULL AS anc_is_root
    FROM up u JOIN t a ON a.trace_id = u.trace_id AND a.span_id = u.ancestor),
agents AS (
    SELECT trace_id, span_id, arg_max(anc, depth) AS agent
    FROM chain WHERE anc_kind = 'episode' GROUP BY ALL),
roots AS (SELECT trace_id, span_id, any_value(anc) AS root FROM chain WHERE anc_is_root GROUP BY ALL),
facts AS (
    SELECT trace_id, bool_or(kind = 'episode') AS has_agent,
           bool_or(kind IN ('llm_call', 'tool_call')) AS has_calls
    FROM t GROUP BY trace_id),
placed AS (
    SELECT t.trace_id, t.span_id, t.kind, t.given_episode,
           coalesce(a.agent, CASE WHEN NOT f.has_agent AND f.has_calls
                                  AND coalesce(rt.kind, 'span') NOT IN ('llm_call', 'tool_call')
                                  THEN r.root END) AS episode_span
    FROM t JOIN facts f USING (trace_id)
    LEFT JOIN agents a USING (trace_id, span_id)
    LEFT JOIN roots r USING (trace_id, span_id)
    LEFT JOIN t rt ON rt.trace_id = r.trace_id AND rt.span_id = r.root),
new AS (
    SELECT p.trace_id, p.span_id,
           CASE WHEN p.episode_span = p.span_id THEN 'episode'
                WHEN p.kind = 'episode' THEN 'span'  -- an agent inside another agent's episode
                ELSE coalesce(p.kind, 'span') END AS span_type,
           coalesce(p.given_episode, CASE WHEN p.episode_span IS NOT NULL THEN coalesce(
               e.given_episode, p.trace_id || '-' || p.episode_span) END) AS episode_id
    FROM placed p LEFT JOIN t e ON e.trace_id = p.trace_id AND e.span_id = p.episode_span),
models AS (
    SELECT n.episode_id, t.own_model AS model, any_value(t.own_provider) AS provider,
           count(*) AS calls, min(t.start_ns) AS first_ns
    FROM new n JOIN t USING (trace_id, span_id)
    WHERE n.span_type = 'llm_call' AND t.own_model IS NOT NULL AND n.episode_id IS NOT NULL
    GROUP BY ALL),
best AS (  -- the model of most of the episode's calls (ties: the earliest)
    SELECT episode_id, first(model ORDER BY calls DESC, first_ns) AS model,
           first(provider ORDER BY calls DESC, first_ns) AS provider
    FROM models GROUP BY episode_id),
out AS (
    SELECT n.trace_id, n.span_id, n.span_type, n.episode_id,
           CASE WHEN n.span_type = 'episode' THEN coalesce(t.own_model, b.model)
                ELSE t.own_model END AS model_id,
           CASE WHEN n.span_type = 'episode' THEN coalesce(t.own_provider, b.provider)
                ELSE t.own_provider END AS provider,
           -- a plain root that became the episode is its scaffold, by name
           CASE WHEN n.span_type = 'episode' AND t.own_scaffold IS NULL THEN t.name END
               AS scaffold,
           t.span_type AS old_type, t.episode_id AS old_episode, t.model_id AS old_model,
           t.provider AS old_provider
    FROM new n JOIN t USING (trace_id, span_id)
    LEFT JOIN best b ON n.span_type = 'episode' AND b.episode_id = n.episode_id)
SELECT trace_id, span_id, span_type, episode_id, model_id, provider, scaffold FROM out
WHERE span_type IS DISTINCT FROM old_type OR episode_id IS DISTINCT FROM old_episode
   OR model_id IS DISTINCT FROM old_model OR provider IS DISTINCT FROM old_provider
   OR scaffold IS NOT NULL
"""

_UPDATE = f"""
UPDATE spans SET span_type = c.span_type, episode_id = c.episode_id, model_id = c.model_id,
                 provider = c.provider,
                 attributes = CASE WHEN c.scaffold IS NULL THEN spans.attributes
                     ELSE json_merge_patch(spans.attributes, json_object(
                         '{A.SCAFFOLD_NAME}', c.scaffold, '{A.MAPPED_CONVENTION}',
                         coalesce(spans.attributes->>'$."{A.MAPPED_CONVENTION}"', 'otel'),
                         '{A.MAPPED_KEYS}', list_distinct(list_append(coalesce(CAST(
                             spans.attributes->'$."{A.MAPPED_KEYS}"' AS VARCHAR[]), []),
                             '{A.SCAFFOLD_NAME}')))) END
FROM {_C} c WHERE spans.trace_id = c.trace_id AND spans.span_id = c.span_id
"""

_CONTENT_EVENTS = (*semantic.EVENT_ROLES, "gen_ai.choice", semantic.OPERATION_DETAILS_EVENT)
_LOGGED = f"""
SELECT s.trace_id, s.span_id, any_value(s.attributes) AS attributes,
       list(struct_pack(name := l.event_name, body := l.body, attributes := l.attributes)
            ORDER BY l.time_ns, l.observed_time_ns) AS records
FROM spans s JOIN log_events l ON l.trace_id = s.trace_id AND l.span_id = s.span_id
WHERE s.trace_id IN (SELECT trace_id FROM {_T}) AND s.span_type = 'llm_call'
  AND l.event_name IN ({", ".join(f"'{name}'" for name in _CONTENT_EVENTS)})
GROUP BY s.trace_id, s.span_id
"""


def settle(con: duckdb.DuckDBPyConnection, traces: Iterable[str]) -> set[str]:
    """Re-derive the episodes (and merge logged content) of these traces inside the open
    transaction, then replace the typed rows (tracer/typed.py) of the traces whose spans
    changed; returns those traces."""
    ids = sorted(set(traces))
    if not ids:
        return set()
    con.register(_T, pa.table({"trace_id": pa.array(ids, pa.string())}))
    try:
        changed = _place(con) | _merge_logged_content(con)
    finally:
        con.unregister(_T)
    rederive_traces(con, changed)
    return changed


def _place(con: duckdb.DuckDBPyConnection) -> set[str]:
    found = con.execute(_RESOLVE).fetchall()
    if not found:
        return set()
    names = ("trace_id", "span_id", "span_type", "episode_id", "model_id", "provider", "scaffold")
    changes = pa.table({name: pa.array([row[i] for row in found], pa.string())
                        for i, name in enumerate(names)})
    con.register(_C, changes)
    try:
        con.execute(_UPDATE)
    finally:
        con.unregister(_C)
    return {row[0] for row in found}


def _merge_logged_content(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(_LOGGED).fetchall()
    keys, texts = [], []
    for trace_id, span_id, attributes, records in rows:
        merged = _with_logged_content(json.loads(attributes), records)
        if merged is not None:
            keys.append((trace_id, span_id))
            texts.append(json.dumps(merged, ensure_ascii=False, separators=(",", ":")))
    if not keys:
        return set()
    con.register(_C, pa.table({"trace_id": [k[0] for k in keys], "span_id": [k[1] for k in keys],
                               "attributes": texts}))
    try:
        con.execute(f"UPDATE spans SET attributes = c.attributes FROM {_C} c "
                    "WHERE spans.trace_id = c.trace_id AND spans.span_id = c.span_id")
    finally:
        con.unregister(_C)
    return {k[0] for k in keys}


def _with_logged_content(attrs: dict[str, Any], records: list[dict[str, Any]]
                         ) -> dict[str, Any] | None:
    """The span's attributes with the content of its log records, or None when unchanged
    (its instrumentation put content on the span itself, or these records are merged)."""
    merged_before = attrs.get(A.MAPPED_LOG_RECORDS)
    if merged_before is None and A.GEN_AI_INPUT_MESSAGES in attrs:
        return None
    if merged_before == len(records):
        return None
    events = []
    for record in records:
        body = json.loads(record["body"]) if record["body"] is not None else None
        if record["name"] == semantic.OPERATION_DETAILS_EVENT:
            body = {**(body if isinstance(body, dict) else {}),
                    **json.loads(record["attributes"] or "{}")}
        events.append((record["name"], body))
    inputs, outputs = semantic.messages_from_events(events)
    added = set(attrs.get(A.MAPPED_KEYS) or [])
    for key, value in ((A.GEN_AI_INPUT_MESSAGES, inputs), (A.GEN_AI_OUTPUT_MESSAGES, outputs),
                       (A.GEN_AI_RESPONSE_FINISH_REASONS, semantic.finish_reasons(outputs))):
        if value and (key not in attrs or key in added):
            attrs[key] = json.dumps(value, ensure_ascii=False) if key != (
                A.GEN_AI_RESPONSE_FINISH_REASONS) else value
            added.add(key)
    attrs[A.MAPPED_LOG_RECORDS] = len(records)
    attrs[A.MAPPED_KEYS] = sorted(added | {A.MAPPED_LOG_RECORDS})
    attrs.setdefault(A.MAPPED_CONVENTION, "gen_ai")
    return attrs
