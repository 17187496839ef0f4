"""The ``genai_metrics`` view: the GenAI client metrics' data points, derived from the store.

The store keeps no metrics table: every data point the MeterProvider records
(tracer/metrics.py) is a function of one LLM span (its duration, token counts, time to first
chunk) or of two consecutive token events of it (time per output chunk), which the store
already holds in full. So the view derives them, one row per data point, with the metric's
attributes; aggregate it like a histogram (``count(*)``, ``sum(value)``, quantiles).
"""

from __future__ import annotations

from collections.abc import Callable

from shardscope.tracer import attributes as A

_COLUMNS = ("operation, provider, request_model, response_model, error_type, run_id, "
            "episode_id, model_id AS model, trace_id, span_id")


def metric_views(kept: Callable[[str], str]) -> dict[str, str]:
    """The view's SQL; ``kept(table_prefix)`` is the condition leaving out abandoned attempts."""
    calls = f"SELECT * FROM spans s WHERE span_type = 'llm_call' AND {kept('s.')}"
    ttfc = f"""TRY_CAST(attributes->>'$."{A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK}"' AS DOUBLE)"""
    sql = f"""
WITH calls AS ({calls}),
chunks AS (
    SELECT e.trace_id, e.span_id, e.time,
           TRY_CAST(e.attributes->>'$."{A.TOKEN_OFFSET_MS}"' AS DOUBLE)
           - lag(TRY_CAST(e.attributes->>'$."{A.TOKEN_OFFSET_MS}"' AS DOUBLE)) OVER (
               PARTITION BY e.trace_id, e.span_id
               ORDER BY TRY_CAST(e.attributes->>'$."{A.TOKEN_INDEX}"' AS INTEGER)) AS gap_ms
    FROM span_events e SEMI JOIN calls c ON c.trace_id = e.trace_id AND c.span_id = e.span_id
    WHERE e.name = '{A.EVENT_TOKEN}')
SELECT '{A.METRIC_OPERATION_DURATION}' AS metric, 's' AS unit, duration_ms / 1000.0 AS value,
       NULL AS token_type, {_COLUMNS}, end_time AS time
FROM calls
UNION ALL
SELECT '{A.METRIC_TOKEN_USAGE}', '{{token}}', CAST(input_tokens AS DOUBLE), 'input',
       {_COLUMNS}, end_time
FROM calls WHERE input_tokens IS NOT NULL
UNION ALL
SELECT '{A.METRIC_TOKEN_USAGE}', '{{token}}', CAST(output_tokens AS DOUBLE), 'output',
       {_COLUMNS}, end_time
FROM calls WHERE output_tokens IS NOT NULL
UNION ALL
SELECT '{A.METRIC_TIME_TO_FIRST_CHUNK}', 's', {ttfc}, NULL, {_COLUMNS}, end_time
FROM calls WHERE {ttfc} IS NOT NULL
UNION ALL
SELECT '{A.METRIC_TIME_PER_OUTPUT_CHUNK}', 's', k.gap_ms / 1000.0, NULL,
       {", ".join("c." + c.strip() for c in _COLUMNS.split(","))}, k.time
FROM chunks k JOIN calls c USING (trace_id, span_id) WHERE k.gap_ms IS NOT NULL
"""
    return {"genai_metrics": sql}


METRIC_DESCRIPTIONS = {
    "genai_metrics": "The GenAI client metrics, one row per data point, derived from the LLM "
    "spans and token events (no separate table): gen_ai.client.operation.duration (s), "
    "gen_ai.client.token.usage ({token}, token_type input/output), "
    "gen_ai.client.operation.time_to_first_chunk and time_per_output_chunk (s, streamed calls "
    "only) with their attributes; the same values the MeterProvider sends over OTLP.",
}
