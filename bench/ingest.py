"""Ingest throughput: spans/s through our processor + DuckDB exporter, against a raw DuckDB
Arrow insert of the identical rows, in the same run.

Ours starts from finished OpenTelemetry spans (as the SDK hands them to a processor) and
ends when every span is committed to a DuckDB file on disk: conversion, buffering, the
cross-process lock, open/append/commit/close. The baseline starts from the exact rows our
pipeline stored, already as Python column lists, and does one `pa.table` + `INSERT ... SELECT`
into a fresh file with the same schema: the floor for getting those rows into DuckDB from
Python. Rounds alternate; medians are compared.

Last line: ``ingest_ratio: <ours / baseline spans-per-second>`` (target >= 0.5).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import make_spans, timed
from shardscope.tracer.pipeline import ReliableSpanProcessor
from shardscope.tracer.schema import create_tables
from shardscope.tracer.sinks import DuckDBSink
from shardscope.tracer.store import Store


def ours(spans: list, directory: Path, tag: str) -> float:
    store = Store(directory / f"ours-{tag}.duckdb")
    with store.writer():
        pass  # schema creation is not ingest
    processor = ReliableSpanProcessor(DuckDBSink(store), flush_interval=0.5, strict=True)

    def run() -> None:
        for span in spans:
            processor.on_end(span)
        processor.shutdown()

    elapsed = timed(run)
    assert processor.stats.snapshot()["spans_written"] == len(spans)
    return len(spans) / elapsed


def stored_rows(path: Path) -> tuple[dict, pa.Schema, dict, pa.Schema]:
    """The exact rows our pipeline stored, as Python column lists (the baseline's input)."""
    con = duckdb.connect(str(path), read_only=True)
    spans = con.sql("SELECT * FROM spans").to_arrow_table()
    events = con.sql("SELECT * FROM span_events").to_arrow_table()
    con.close()
    return spans.to_pydict(), spans.schema, events.to_pydict(), events.schema


def baseline(rows: tuple[dict, pa.Schema, dict, pa.Schema], directory: Path, tag: str) -> float:
    span_columns, span_schema, event_columns, event_schema = rows
    path = directory / f"raw-{tag}.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con)
    con.close()

    def run() -> None:
        connection = duckdb.connect(str(path))
        spans_table = pa.table(span_columns, schema=span_schema)  # noqa: F841 - read by name by DuckDB
        events_table = pa.table(event_columns, schema=event_schema)
        connection.execute("INSERT INTO spans BY NAME SELECT * FROM spans_table")
        if events_table.num_rows:
            connection.execute("INSERT INTO span_events BY NAME SELECT * FROM events_table")
        connection.close()

    elapsed = timed(run)
    return len(span_columns["span_id"]) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    spans = make_spans(args.spans)
    # The input spans are scaffolding of this script, alive for its whole run; keep the
    # garbage collector from re-scanning them inside both measured paths.
    gc.freeze()
    ours_rates, raw_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ours_rates.append(ours(spans, directory, "0"))
        rows = stored_rows(directory / "ours-0.duckdb")
        gc.freeze()
        for i in range(args.rounds):  # alternate, so drift on a noisy machine hits both
            raw_rates.append(baseline(rows, directory, str(i)))
            if i:
                ours_rates.append(ours(spans, directory, str(i)))
        ours_rate, raw_rate = statistics.median(ours_rates), statistics.median(raw_rates)
    print(f"spans per round: {args.spans:,}; rounds: {args.rounds}")
    print(f"ours (processor + exporter into DuckDB): {ours_rate:,.0f} spans/s")
    print(f"baseline (raw Arrow insert of the same rows): {raw_rate:,.0f} spans/s")
    print(f"ingest_ratio: {ours_rate / raw_rate:.3f}")


if __name__ == "__main__":
    main()
