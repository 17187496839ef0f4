"""`shardscope export --format parquet` throughput against DuckDB's own COPY of the same views.

Generates (or reuses, with ``--store PATH``) a store through the real tracing pipeline (the
span shapes of bench/ui_load.py: runs, episodes, steps, LLM calls with token events, tool
calls). Then, in alternating rounds, times:

- ours: ``export_parquet`` exactly as the command runs it (every view and table, a read-only
  connection per relation under the store's lock, hive-partitioned by run_id, the manifest);
- baseline: one plain DuckDB connection running ``COPY (SELECT * FROM <view>) TO ...
  (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (run_id), WRITE_PARTITION_COLUMNS true)``
  for the same relations and the same SELECTs: the same rows and bytes, no shardscope around.

Rows/s is the exported rows over the wall time; the ratio is ours over the baseline (median
of the rounds). Also prints the OTLP JSON export's spans/s (report only). Last line:
``export_ratio: <value>``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from bench.ui_load import generate
from shardscope.commands.export import ExportOptions, export_otlp_files, export_parquet
from shardscope.tracer.queries.export import RELATIONS, ExportFilter, relation_sql
from shardscope.tracer.store import Store


def ours(store: Path, out: Path) -> int:
    counts = export_parquet(Store(store), ExportOptions("parquet", out, ExportFilter(),
                                                        progress=False))
    return sum(counts.values())


def baseline(store: Path, out: Path) -> int:
    total = 0
    con = duckdb.connect(str(store), read_only=True)
    try:
        out.mkdir(parents=True)
        for name in RELATIONS:
            sql, params = relation_sql(name, ExportFilter())
            row = con.execute(
                f"COPY ({sql}) TO '{out / name}' (FORMAT parquet, COMPRESSION zstd, "
                "PARTITION_BY (run_id), WRITE_PARTITION_COLUMNS true)", params).fetchone()
            total += int(row[0]) if row else 0
    finally:
        con.close()
    return total


def timed(fn: object, store: Path, out: Path) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    rows = fn(store, out)  # type: ignore[operator]
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="reuse (or create) this store")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the generated store (>= 3)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="shardscope-bench-export-"))
    try:
        store = args.store or scratch / "bench.duckdb"
        if not store.exists():
            started = time.perf_counter()
            generate(store, args.seeds)
            print(f"generated {store} in {time.perf_counter() - started:.0f} s", flush=True)
        with Store(store).reader() as con:
            spans = con.execute("SELECT count(*) FROM spans").fetchone()
        print(f"store: {spans[0] if spans else 0} spans", flush=True)
        ours_rates, base_rates = [], []
        for i in range(args.rounds):
            t_base, rows_base = timed(baseline, store, scratch / "base")
            t_ours, rows_ours = timed(ours, store, scratch / "ours")
            assert rows_ours == rows_base, (rows_ours, rows_base)
            ours_rates.append(rows_ours / t_ours)
            base_rates.append(rows_base / t_base)
            print(f"round {i + 1}: {rows_ours} rows; ours {t_ours:.2f} s "
                  f"({rows_ours / t_ours:,.0f} rows/s), DuckDB COPY {t_base:.2f} s "
                  f"({rows_base / t_base:,.0f} rows/s)", flush=True)
        start = time.perf_counter()
        written = export_otlp_files(Store(store), ExportOptions(
            "otlp-json", scratch / "otlp", ExportFilter(), progress=False))
        elapsed = time.perf_counter() - start
        otlp_spans = written["traces.jsonl"][1]
        print(f"otlp-json: {otlp_spans} spans in {elapsed:.2f} s "
              f"({otlp_spans / elapsed:,.0f} spans/s)")
        ratio = statistics.median(ours_rates) / statistics.median(base_rates)
        print(f"export_ratio: {ratio:.3f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
