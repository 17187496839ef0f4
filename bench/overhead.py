"""Per-span overhead: one span through shardscope's API, against a bare SDK span, same run.

Ours: ``Tracing.span(name, type, attributes)`` on the product's provider (inherited-context
processor, content policy, never-dropping processor whose thread converts and writes every
span to a DuckDB file). Baseline: ``tracer.start_as_current_span(name, attributes=...)`` on a
bare SDK TracerProvider whose SimpleSpanProcessor hands each span to a no-op exporter (the
least the SDK does to deliver a span). Same number of spans, same 11 attributes; rounds
alternate, medians are compared.

The headline is the cost the instrumented code pays per span: the producer loop's wall time
while our exporter threads convert and write concurrently (they compete for the GIL, and
that slowdown is included). Draining the exporter's backlog at the end is reported on its own
line: it is the store's ingest cost, which bench/ingest.py measures against raw DuckDB.

Last line: ``span_overhead_ratio: <ours / baseline seconds per span>`` (target <= 1.5).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ATTRIBUTES, timed
from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.setup import setup_tracing


class NullExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def ours(n: int, directory: Path, tag: str) -> tuple[float, float]:
    """(producer seconds per span, drain seconds per span)."""
    tracing = setup_tracing(Settings(db=directory / f"{tag}.duckdb"), strict=True)
    attrs = dict(ATTRIBUTES)

    def produce() -> None:
        with tracing.inherit({A.RUN_ID: "run-bench"}):
            for _ in range(n):
                with tracing.span("chat smollm2", SpanType.LLM_CALL, attrs):
                    pass

    produced = timed(produce)
    drained = timed(tracing.shutdown)
    assert tracing.stats()["duckdb"]["spans_written"] == n
    return produced / n, drained / n


def bare(n: int) -> float:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(NullExporter()))
    tracer = provider.get_tracer("bench")
    attrs = dict(ATTRIBUTES)

    def produce() -> None:
        for _ in range(n):
            with tracer.start_as_current_span("chat smollm2", attributes=attrs):
                pass

    seconds = timed(produce)
    provider.shutdown()
    return seconds / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)  # the ratio is noisy on 2 cores
    args = parser.parse_args()
    ours_times, drain_times, bare_times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            bare_times.append(bare(args.spans))
            produced, drained = ours(args.spans, Path(tmp), str(i))
            ours_times.append(produced)
            drain_times.append(drained)
    ours_us, bare_us = statistics.median(ours_times) * 1e6, statistics.median(bare_times) * 1e6
    drain_us = statistics.median(drain_times) * 1e6
    print(f"spans per round: {args.spans:,}; rounds: {args.rounds}")
    print(f"ours (shardscope API, exporter writing to DuckDB meanwhile): {ours_us:.1f} us/span")
    print(f"baseline (bare SDK span, no-op exporter): {bare_us:.1f} us/span")
    print(f"drain of our exporter's backlog after the loop: {drain_us:.1f} us/span "
          f"(with it: {(ours_us + drain_us) / bare_us:.2f}x)")
    print(f"span_overhead_ratio: {ours_us / bare_us:.3f}")


if __name__ == "__main__":
    main()
