"""The span API: inherited context attributes, the content switch, secret redaction."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store


def test_inherited_attributes_reach_nested_spans(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with tracing.inherit({A.RUN_ID: "r"}), tracing.span("outer", SpanType.EPISODE, {A.EPISODE_ID: "own"}):
        with tracing.inherit({A.EPISODE_ID: "e", A.STEP_INDEX: 3}):
            with tracing.span("inner", SpanType.STEP):
                pass
    with tracing.span("outside", SpanType.SPAN):
        pass
    tracing.shutdown()
    rows = read_frame(Store(db_path), "SELECT name, run_id, episode_id, step_index FROM spans ORDER BY name")
    by_name = {r.name: r for r in rows.itertuples()}
    assert (by_name["inner"].run_id, by_name["inner"].episode_id, by_name["inner"].step_index) == ("r", "e", 3)
    assert by_name["outer"].episode_id == "own"  # explicit attributes win over inherited ones
    assert pd.isna(by_name["outside"].run_id)


def test_content_capture_off_drops_message_content(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path, capture_content=False), strict=True)
    with tracing.span("chat m", SpanType.LLM_CALL, {
        A.GEN_AI_INPUT_MESSAGES: [{"role": "user", "parts": [{"type": "text", "content": "secret plan"}]}],
        A.GEN_AI_REQUEST_MODEL: "m",
    }) as span:
        span.token(0, "hello", 1.0, -0.5)
        span.set(A.GEN_AI_OUTPUT_MESSAGES, [{"role": "assistant", "parts": []}])
    tracing.shutdown()
    store = Store(db_path)
    row = read_frame(store, "SELECT request_model, input_messages, output_messages FROM llm_calls").iloc[0]
    assert row.request_model == "m"
    assert row.input_messages is None and row.output_messages is None
    tok = read_frame(store, "SELECT token, logprob FROM token_events").iloc[0]
    assert tok.token is None and tok.logprob == -0.5
    text = read_frame(store, "SELECT string_agg(attributes::VARCHAR, ' ') AS a FROM spans").a[0]
    assert "secret plan" not in text


def test_secrets_are_redacted_everywhere(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-live-0123456789abcdefghijkl"
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "plainsecretvalue42")
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with pytest.raises(RuntimeError), tracing.span("chat m", SpanType.LLM_CALL, {
        A.GEN_AI_INPUT_MESSAGES: [{"role": "user", "parts": [{"type": "text", "content": f"use {key}"}]}],
    }) as span:
        span.set(A.STEP_OUTPUT, "the key is plainsecretvalue42")
        raise RuntimeError(f"provider rejected Bearer {key}")
    tracing.shutdown()
    con_text = read_frame(Store(db_path), """
        SELECT string_agg(coalesce(s.attributes::VARCHAR, '') || coalesce(s.status_message, '')
                          || coalesce(e.attributes::VARCHAR, ''), ' ') AS t
        FROM spans s LEFT JOIN span_events e USING (span_id)""").t[0]
    assert key not in con_text and "plainsecretvalue42" not in con_text
    assert "[REDACTED]" in con_text
