"""The GenAI client metrics, recorded once per LLM call through an OpenTelemetry MeterProvider.

``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` for every call; for
streamed calls ``gen_ai.client.operation.time_to_first_chunk`` and, for every chunk after the
first, ``gen_ai.client.operation.time_per_output_chunk`` (names, units and bucket boundaries
from the GenAI semantic conventions). They go out over OTLP when the ``otlp`` exporter is on
(tracer/setup.py). The store keeps no separate copy: the ``genai_metrics`` view derives the
same data points from the spans and token events it already holds (tracer/metric_views.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Meter

from shardscope.tracer import attributes as A

# The conventions' ExplicitBucketBoundaries for each histogram.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
CHUNK_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
FIRST_CHUNK_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                       2.5, 5.0, 7.5, 10.0)

# Span attributes that are also metric attributes (the conventions' metric_attributes.gen_ai).
METRIC_ATTRIBUTES = (A.GEN_AI_OPERATION_NAME, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_REQUEST_MODEL,
                     A.GEN_AI_RESPONSE_MODEL, A.SERVER_ADDRESS, A.SERVER_PORT)


@dataclass(frozen=True)
class CallMeasurement:
    """What one finished LLM call measured (read off its span once it ended)."""

    attributes: Mapping[str, Any]  # the span's attributes
    duration_s: float
    input_tokens: int | None
    output_tokens: int | None
    time_to_first_chunk_s: float | None  # streamed calls only
    chunk_offsets_ms: Sequence[float] = ()  # streamed calls: each chunk's offset from the request


class GenAIMetrics:
    """The four GenAI client instruments of one meter."""

    def __init__(self, meter: Meter) -> None:
        self.duration = meter.create_histogram(
            A.METRIC_OPERATION_DURATION, unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.tokens = meter.create_histogram(
            A.METRIC_TOKEN_USAGE, unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self.first_chunk = meter.create_histogram(
            A.METRIC_TIME_TO_FIRST_CHUNK, unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=FIRST_CHUNK_BUCKETS)
        self.per_chunk = meter.create_histogram(
            A.METRIC_TIME_PER_OUTPUT_CHUNK, unit="s",
            description="Time between consecutive chunks of a streamed response.",
            explicit_bucket_boundaries_advisory=CHUNK_BUCKETS)

    def record(self, call: CallMeasurement) -> None:
        """Record one call's data points (errors carry ``error.type`` on the duration only)."""
        base = {k: call.attributes[k] for k in METRIC_ATTRIBUTES
                if call.attributes.get(k) is not None}
        error = call.attributes.get(A.ERROR_TYPE)
        self.duration.record(call.duration_s, {**base, A.ERROR_TYPE: error} if error else base)
        for kind, count in (("input", call.input_tokens), ("output", call.output_tokens)):
            if count is not None:
                self.tokens.record(count, {**base, A.GEN_AI_TOKEN_TYPE: kind})
        if call.time_to_first_chunk_s is not None:
            self.first_chunk.record(call.time_to_first_chunk_s, base)
        offsets = call.chunk_offsets_ms
        for previous, current in itertools.pairwise(offsets):
            self.per_chunk.record((current - previous) / 1000, base)
