"""Spans also go out over OTLP/HTTP to any collector: a loopback receiver decodes them."""

from __future__ import annotations

from pathlib import Path

from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.setup import setup_tracing
from tests.helpers.otlp_receiver import otlp_receiver


def test_spans_reach_an_otlp_collector_and_the_store(db_path: Path) -> None:
    with otlp_receiver() as received:
        settings = Settings(db=db_path, exporters=("duckdb", "otlp"),
                            otlp_endpoint=received.endpoint)
        tracing = setup_tracing(settings, strict=True)
        with tracing.span("chat toy", SpanType.LLM_CALL, {A.GEN_AI_REQUEST_MODEL: "toy"}):
            pass
        tracing.shutdown()
    spans = received.spans()
    assert [s.name for s in spans] == ["chat toy"]
    attrs = {kv.key: kv.value.string_value for kv in spans[0].attributes}
    assert attrs[A.GEN_AI_REQUEST_MODEL] == "toy" and attrs[A.SPAN_TYPE] == "llm_call"
    assert tracing.stats()["otlp"]["spans_written"] == 1
    assert tracing.stats()["duckdb"]["spans_written"] == 1
