"""Helpers shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from shardscope.tracer import attributes as A

ATTRIBUTES: dict[str, Any] = {
    A.SPAN_TYPE: "llm_call",
    A.GEN_AI_OPERATION_NAME: "chat",
    A.GEN_AI_PROVIDER_NAME: "llama_cpp",
    A.GEN_AI_REQUEST_MODEL: "smollm2-135m-instruct",
    A.GEN_AI_RESPONSE_MODEL: "smollm2-135m-instruct",
    A.GEN_AI_REQUEST_TEMPERATURE: 0.0,
    A.GEN_AI_REQUEST_MAX_TOKENS: 128,
    A.GEN_AI_USAGE_INPUT_TOKENS: 312,
    A.GEN_AI_USAGE_OUTPUT_TOKENS: 64,
    A.RUN_ID: "run-bench",
    A.EPISODE_ID: "episode-0001",
}


class Collect(SpanProcessor):
    """Keeps finished spans so the same ones can be fed to several pipelines."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def make_spans(n: int, events_per_span: int = 0) -> list[ReadableSpan]:
    provider = TracerProvider()
    collect = Collect()
    provider.add_span_processor(collect)
    tracer = provider.get_tracer("bench")
    for i in range(n):
        with tracer.start_as_current_span("chat smollm2", attributes={**ATTRIBUTES, "i": i}) as s:
            for k in range(events_per_span):
                s.add_event("shardscope.token", {A.TOKEN_INDEX: k, A.TOKEN_TEXT: "tok"})
    return collect.spans


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
