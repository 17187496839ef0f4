"""Lake ingest: 4 concurrent writer processes into a Parquet lake against 1 writer process into
a DuckDB file, on the same spans, in the same run.

Every writer process first builds its finished OpenTelemetry spans (not timed: the SDK's
cost is the same whichever sink follows), then, on a common start signal, hands them to our
pipeline (``ReliableSpanProcessor``) and shuts it down: conversion, buffering, and the sink's
write until every span is durable (a committed DuckDB transaction; renamed Parquet files).
The aggregate rate is all spans over the time from the first writer's start to the last
writer's end. The lake writers each write a quarter of the spans; the DuckDB writer writes
them all. For context it also runs 4 processes into one DuckDB file (they take turns on the
store's lock).

Counts are then checked exactly: every span id once, every event, nothing lost.

Last line: ``lake_ratio: <lake aggregate spans/s / single DuckDB writer spans/s>`` (target >= 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WRITERS = 4
EVENTS_PER_SPAN = 4


def child(mode: str, path: str, count: int) -> None:
    from bench._common import make_spans
    from shardscope.tracer.lake_sink import ParquetSink
    from shardscope.tracer.pipeline import ReliableSpanProcessor, Sink
    from shardscope.tracer.sinks import DuckDBSink
    from shardscope.tracer.store import Store

    spans = make_spans(count, EVENTS_PER_SPAN)
    sink: Sink = ParquetSink(path) if mode == "lake" else DuckDBSink(Store(path))
    processor = ReliableSpanProcessor(sink, flush_interval=0.5, strict=True)
    print("ready", flush=True)
    sys.stdin.readline()
    start, cpu_start = time.time(), time.process_time()
    for span in spans:
        processor.on_end(span)
    processor.shutdown()
    end = time.time()
    cpu = time.process_time() - cpu_start
    stats = processor.stats.snapshot()
    print(json.dumps({"start": start, "end": end, "written": stats["spans_written"],
                      "lost": stats["lost_spans"], "cpu": cpu}), flush=True)


def run(mode: str, path: Path, counts: list[int]) -> dict[str, float]:
    """Start one process per count, release them together, return the aggregate."""
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--child", mode, str(path), str(n)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in counts]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=1800)
        if proc.returncode:
            raise SystemExit(f"{mode} writer failed with exit code {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    total = sum(counts)
    written = sum(r["written"] for r in results)
    lost = sum(r["lost"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    return {"seconds": elapsed, "rate": total / elapsed, "written": written, "lost": lost,
            "cpu_us_per_span": cpu / total * 1e6, "cores": cpu / elapsed}


def check_counts(path: Path, spans: int) -> dict[str, int]:
    from shardscope.tracer.lake_store import open_source

    store = open_source(path)
    with store.reader() as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM spans), (SELECT count(DISTINCT (trace_id, span_id)) "
            "FROM spans), (SELECT count(*) FROM span_events), (SELECT coalesce(sum(lost_spans), "
            "0) FROM writer_stats)").fetchone()
    assert row is not None
    found = {"spans": int(row[0]), "distinct": int(row[1]), "events": int(row[2]),
             "lost": int(row[3])}
    expected = {"spans": spans, "distinct": spans, "events": spans * EVENTS_PER_SPAN, "lost": 0}
    if found != expected:
        raise SystemExit(f"{path}: counts {found}, expected {expected}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000, help="total spans per contender")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    total = args.spans - args.spans % WRITERS
    quarter = [total // WRITERS] * WRITERS
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        directory = Path(tmp)
        single = run("duckdb", directory / "single.duckdb", [total])
        check_counts(directory / "single.duckdb", total)
        lake = run("lake", directory / "lake", quarter)
        lake_counts = check_counts(directory / "lake", total)
        shared = run("duckdb", directory / "shared.duckdb", quarter)
        check_counts(directory / "shared.duckdb", total)
        files = sum(1 for _ in (directory / "lake").rglob("*.parquet"))
    for name, result in (("1 writer -> DuckDB file", single), ("4 writers -> lake", lake),
                         ("4 writers -> one DuckDB file", shared)):
        print(f"{name:30s} {result['rate']:>10,.0f} spans/s  ({result['seconds']:.2f} s, "
              f"{int(result['written']):,} written, {int(result['lost'])} lost; "
              f"{result['cpu_us_per_span']:.0f} us CPU/span, {result['cores']:.2f} cores busy)")
    print(f"lake: {lake_counts['spans']:,} spans ({lake_counts['distinct']:,} distinct ids), "
          f"{lake_counts['events']:,} events in {files} files; exact counts, zero loss")
    print(f"4 writers -> one DuckDB file vs 1 writer: {shared['rate'] / single['rate']:.2f}x; "
          f"lake vs 4 writers -> one DuckDB file: {lake['rate'] / shared['rate']:.2f}x; "
          f"{os.cpu_count()} CPUs here")
    print(f"lake_ratio: {lake['rate'] / single['rate']:.2f}")


if __name__ == "__main__":
    main()
