"""OTLP requests stay small: at most 512 spans and well under the 64 MiB collectors accept,
with token events capped per span (counted), while the store keeps every token."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer import attributes as A
from shardscope.tracer.otlp_bounds import MAX_SPANS, MAX_TOKEN_EVENTS, BoundedOTLPSink
from shardscope.tracer.pipeline import PipelineStats
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes
from tests.helpers.otlp_receiver import otlp_receiver

MIB = 1024 * 1024
ANSWER_TOKENS = 300  # words in each final answer: one token event each


def _policy(messages, tools, config):
    if len(messages) <= 2:
        return Scripted(tool_calls=(ToolCall("c", "add", {"a": 2, "b": 3}),))
    return Scripted(text=" ".join(f"w{i}" for i in range(ANSWER_TOKENS - 2)) + " Answer: 5")


@pytest.mark.slow
def test_a_big_run_goes_out_in_bounded_requests(db_path: Path) -> None:
    with otlp_receiver() as received:
        settings = Settings(db=db_path, exporters=("duckdb", "otlp"), flush_interval=60.0,
                            otlp_endpoint=received.endpoint)
        tracing = setup_tracing(settings, strict=True)  # one batch at shutdown: the worst case
        models = {n: TracedModel(ScriptedBackend(model=n, policy=_policy), tracing, model_id=n)
                  for n in ("toy-a", "toy-b")}
        spec = MatrixSpec(suites=("toy",), models=tuple(models), scaffolds=("react-tools",), seeds=5)
        asyncio.run(Runner(tracing, fakes.resources(models, tasks=20), progress=False).run(spec))
        tracing.shutdown()
        stats = tracing.stats()["otlp"]

    requests = received.trace_requests()  # the run's metrics go to /v1/metrics: not counted
    sizes = [size for size, _ in requests]
    spans = received.spans()
    per_request = [sum(len(ss.spans) for rs in r.resource_spans for ss in rs.scope_spans)
                   for _, r in requests]
    store = Store(db_path)
    (stored,) = read_frame(store, "SELECT count(*) AS n FROM spans").n
    assert len(spans) == stored > 2 * MAX_SPANS  # every span arrived, in several requests
    assert max(per_request) <= MAX_SPANS and len(per_request) >= 3
    assert max(sizes) < 8 * MIB  # far under the 64 MiB a collector accepts

    long_calls = [s for s in spans if sum(e.name == A.EVENT_TOKEN for e in s.events) == MAX_TOKEN_EVENTS]
    assert len(long_calls) == 200  # every final answer, capped
    for span in long_calls:
        attrs = {kv.key: kv.value.int_value for kv in span.attributes}
        assert attrs[A.TOKEN_EVENTS_DROPPED] == ANSWER_TOKENS - MAX_TOKEN_EVENTS
        assert attrs[A.TOKEN_EVENTS_SENT] == MAX_TOKEN_EVENTS
    assert stats["events_dropped"] == 200 * (ANSWER_TOKENS - MAX_TOKEN_EVENTS)
    assert stats["spans_written"] == stored and stats["dropped_spans"] == 0
    # the store keeps the whole stream
    streams = read_frame(store, "SELECT span_id, count(*) AS n FROM token_events GROUP BY span_id")
    assert (streams.n == ANSWER_TOKENS).sum() == 200


@pytest.mark.slow
def test_the_encoder_sees_requests_under_64_mib_where_one_batch_is_over() -> None:
    """Spans carrying big prompts (100 KB each): one 700-span batch encodes to over 64 MiB; the
    sink's requests each encode, with the SDK's own OTLP encoder, to a fraction of it."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_events=1000))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    prompt = "x" * 100_000
    tracer = provider.get_tracer("test")
    for i in range(700):
        with tracer.start_as_current_span(f"chat {i}") as span:
            span.set_attribute(A.GEN_AI_INPUT_MESSAGES, prompt)
            for t in range(300 if i < 10 else 0):
                span.add_event(A.EVENT_TOKEN, {A.TOKEN_INDEX: t, A.TOKEN_TEXT: "tok"})
    finished = memory.get_finished_spans()
    assert encode_spans(finished).ByteSize() > 64 * MIB  # what one request used to be

    class _Recording:
        def __init__(self) -> None:
            self.sizes: list[tuple[int, int]] = []

        def export(self, spans):
            from opentelemetry.sdk.trace.export import SpanExportResult

            self.sizes.append((len(spans), encode_spans(spans).ByteSize()))
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    exporter = _Recording()
    sink = BoundedOTLPSink(exporter)  # type: ignore[arg-type]
    stats = PipelineStats()
    sink.write(sink.prepare(finished), stats)
    assert sum(n for n, _ in exporter.sizes) == 700
    assert max(n for n, _ in exporter.sizes) <= MAX_SPANS
    assert max(size for _, size in exporter.sizes) <= 17 * MIB  # ~16 MiB budget
    assert stats.snapshot()["events_dropped"] == 10 * (300 - MAX_TOKEN_EVENTS)


def test_a_retried_write_does_not_send_a_request_twice() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(1200):
        with tracer.start_as_current_span(f"s{i}"):
            pass

    class _FailsOnce:
        def __init__(self) -> None:
            self.sent: list[int] = []
            self.failed = False

        def export(self, spans):
            from opentelemetry.sdk.trace.export import SpanExportResult

            if len(self.sent) == 1 and not self.failed:
                self.failed = True
                return SpanExportResult.FAILURE
            self.sent.append(len(spans))
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    exporter = _FailsOnce()
    sink = BoundedOTLPSink(exporter)  # type: ignore[arg-type]
    prepared, stats = sink.prepare(memory.get_finished_spans()), PipelineStats()
    try:
        sink.write(prepared, stats)
    except Exception as exc:  # the pipeline retries the same prepared batch
        assert "FAILURE" in str(exc)
    sink.write(prepared, stats)
    assert exporter.sent == [512, 512, 176] and stats.snapshot()["spans_written"] == 1200
