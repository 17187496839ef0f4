"""One episode's trace, as the Trace explorer shows it: the episode picker, its span tree,
steps, LLM and tool calls, the token stream of an LLM call and a span's raw attributes (the
conversation step by step is built from it by :mod:`shardscope.tracer.transcript`).

Each function reads one episode's (or one span's) rows, in tens of milliseconds on a store
of 1M spans (bench/ui_load.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from shardscope.tracer.queries.episodes import episode_rows
from shardscope.tracer.queries.filters import EpisodeFilter
from shardscope.tracer.queries.frames import query_frame
from shardscope.tracer.store import Store

SPANS_SQL = """
SELECT span_id, parent_span_id, name, span_type, kind, start_ns, end_ns, duration_ms,
       status_code, status_message, error_type, step_index, tool_name, model_id,
       input_tokens, output_tokens, events_count
FROM spans WHERE trace_id = ? AND episode_id = ? ORDER BY start_ns, span_id
"""
LLM_SQL = """
SELECT span_id, step_index, request_model, response_model, input_tokens, output_tokens,
       time_to_first_token_s, tokens_per_second, attempts, cost_usd, status_code,
       status_message, error_type, duration_ms, events_count,
       CAST(finish_reasons AS VARCHAR) AS finish_reasons,
       CAST(system_instructions AS VARCHAR) AS system_instructions,
       CAST(input_messages AS VARCHAR) AS input_messages,
       CAST(output_messages AS VARCHAR) AS output_messages,
       CAST(tool_call_errors AS VARCHAR) AS tool_call_errors
FROM llm_calls WHERE episode_id = ? ORDER BY started_at, span_id
"""
STEPS_SQL = """
SELECT step_index, span_id, input, output, CAST(action AS VARCHAR) AS action, action_type,
       action_tool, protocol_error, llm_calls, tool_calls, input_tokens, output_tokens,
       status_code, duration_ms
FROM steps WHERE episode_id = ? ORDER BY step_index
"""
TOOLS_SQL = """
SELECT span_id, step_index, tool_name, call_id, arguments, result, ok, error_type,
       error_message, truncated, duration_ms
FROM tool_calls WHERE episode_id = ? ORDER BY started_at, span_id
"""
ATTEMPTS_SQL = """
SELECT span_id, step_index, attempt, error_type, error_message, status_code, retry_after_s,
       wait_s, duration_ms
FROM llm_attempts WHERE episode_id = ? ORDER BY time
"""


@dataclass(frozen=True)
class EpisodeTrace:
    """One episode, everything the trace explorer shows (span attributes are fetched apart)."""

    episode: dict[str, Any]
    spans: pd.DataFrame  # depth-first tree order, with depth, label, offset_ms
    steps: pd.DataFrame
    llm_calls: pd.DataFrame
    tool_calls: pd.DataFrame
    attempts: pd.DataFrame


def load_trace(store: Store, episode_id: str) -> EpisodeTrace | None:
    """The episode's row, span tree, steps, LLM calls, tool calls and failed attempts."""
    with store.reader() as con:
        return _trace(con, episode_id)


def _trace(con: duckdb.DuckDBPyConnection, episode_id: str) -> EpisodeTrace | None:
    found = query_frame(con, "SELECT * FROM episodes WHERE episode_id = ?", [episode_id])
    if found.empty:
        return None
    episode = found.iloc[0].to_dict()
    # Episodes of a run share its trace: the episode's spans are those carrying its id.
    spans = query_frame(con, SPANS_SQL, [episode["trace_id"], episode_id])
    parts = [query_frame(con, sql, [episode_id])
             for sql in (STEPS_SQL, LLM_SQL, TOOLS_SQL, ATTEMPTS_SQL)]
    return EpisodeTrace(episode, span_tree(spans, root=episode["span_id"]), *parts)


@dataclass(frozen=True)
class TracePage:
    picker: pd.DataFrame  # the latest episodes: episode_id, label
    trace: EpisodeTrace | None  # the chosen episode (the latest when none was chosen)


def load_trace_page(store: Store, episode_id: str | None = None, picker_limit: int = 200) -> TracePage:
    """The Trace explorer's data through one connection: the picker and one episode's trace."""
    with store.reader() as con:
        rows, _ = episode_rows(con, EpisodeFilter(), "started_at", True, picker_limit, 0,
                               count=False)
        picker = _picker(rows)
        chosen = episode_id or (picker["episode_id"].iloc[0] if len(picker) else None)
        return TracePage(picker, _trace(con, chosen) if chosen else None)


def _picker(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows[["episode_id"]].copy()
    out["label"] = [episode_label(r) for r in rows.to_dict("records")]
    return out


def episode_label(row: dict[str, Any]) -> str:
    """How the picker names an episode: model, scaffold, task, seed, outcome and id."""
    seed = "" if pd.isna(row.get("seed")) else f" seed {int(row['seed'])}"
    return (f"{row.get('model')} · {row.get('scaffold')} · {row.get('suite')}/{row.get('task_id')}"
            f"{seed} · {row.get('outcome')} · {row.get('episode_id')}")


def span_tree(spans: pd.DataFrame, root: str | None = None) -> pd.DataFrame:
    """Spans in depth-first order (children by start time) with depth, an indented label and
    the start offset from the root in milliseconds. Orphans (parent not in the frame) are roots."""
    if spans.empty:
        return spans.assign(depth=[], label=[], offset_ms=[], end_offset_ms=[])
    ids = set(spans["span_id"])
    children: dict[str | None, list[int]] = {}
    for i, parent in enumerate(spans["parent_span_id"]):
        key = parent if parent in ids and spans["span_id"].iat[i] != root else None
        children.setdefault(key, []).append(i)
    order: list[tuple[int, int]] = []
    stack = [(i, 0) for i in reversed(children.get(None, []))]
    while stack:
        i, depth = stack.pop()
        order.append((i, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(spans["span_id"].iat[i], [])))
    out = spans.iloc[[i for i, _ in order]].reset_index(drop=True)
    out["depth"] = [d for _, d in order]
    out["label"] = ["\u2003" * d + n for d, n in zip(out["depth"], out["name"], strict=True)]
    start = int(spans["start_ns"].min())
    out["offset_ms"] = (out["start_ns"] - start) / 1e6
    out["end_offset_ms"] = (out["end_ns"] - start) / 1e6
    return out


def token_stream(store: Store, span_id: str) -> pd.DataFrame:
    """The streamed tokens of one LLM call: index, text, offset, logprob, probability."""
    with store.reader() as con:
        frame = query_frame(con, "SELECT token_index, token, offset_ms, logprob, "
                            "CAST(top_logprobs AS VARCHAR) AS top_logprobs FROM token_events "
                            "WHERE span_id = ? ORDER BY token_index", [span_id])
    frame["probability"] = frame["logprob"].map(lambda v: math.exp(v) if pd.notna(v) else None)
    return frame


@dataclass(frozen=True)
class SpanDetail:
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: pd.DataFrame  # name, time, attributes (token events are shown in the token view)


def span_detail(store: Store, span_id: str) -> SpanDetail | None:
    """A span's raw attributes, resource and non-token events."""
    with store.reader() as con:
        row = con.execute("SELECT CAST(attributes AS VARCHAR), CAST(resource AS VARCHAR) "
                          "FROM spans WHERE span_id = ? LIMIT 1", [span_id]).fetchone()
        if row is None:
            return None
        events = query_frame(con, "SELECT seq, name, time, CAST(attributes AS VARCHAR) AS "
                             "attributes FROM span_events WHERE span_id = ? AND "
                             "name <> 'shardscope.token' ORDER BY seq", [span_id])
    return SpanDetail(json.loads(row[0] or "{}"), json.loads(row[1] or "{}"), events)
