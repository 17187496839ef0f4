"""The cost of the SQL console's boundary: one query through the worker process
(``SqlWorker.run``: statement check, locked configuration, memory and time limits, Arrow IPC
over a pipe) against a plain read-only DuckDB query on the same store, in the same run.

The store holds 2,000 episodes of 10 spans each. Both sides run the same console-sized
queries (an aggregate over the episodes view, and 200 raw span rows), each side opening its
own connection per query as the console does. The worker is started (and its Store has
checked the schema) before the clock starts: that happens once per app process.

Last line: ``sql_guard_overhead: <median guarded time / median plain time>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.sql_worker import SqlWorker
from shardscope.tracer.queries.user_sql import SqlLimits
from shardscope.tracer.setup import setup_tracing

QUERIES = (
    "SELECT model, outcome, count(*) AS n FROM episodes GROUP BY ALL ORDER BY ALL",
    "SELECT span_id, name, start_time FROM spans ORDER BY start_time LIMIT 200",
)


def fill(path: Path, episodes: int) -> None:
    tracing = setup_tracing(Settings(db=path), strict=True)
    for i in range(episodes):
        with tracing.inherit({A.MODEL_ID: f"m{i % 3}"}):
            outcome = "success" if i % 2 else "failure"
            with tracing.span("invoke_agent s", SpanType.EPISODE, {A.EPISODE_OUTCOME: outcome}):
                for _ in range(9):
                    with tracing.span("chat m", SpanType.LLM_CALL, {}):
                        pass
    tracing.shutdown()


def plain(path: Path, sql: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return len(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def timed(fn: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        fill(path, args.episodes)
        worker = SqlWorker()
        limits = SqlLimits()
        try:
            worker.run(str(path), "SELECT 1", max_rows=None, limits=limits, lock_timeout=30)
            guarded_all: list[float] = []
            plain_all: list[float] = []
            for sql in QUERIES:
                rows = [plain(path, sql),
                        worker.run(str(path), sql, max_rows=None, limits=limits,
                                   lock_timeout=30).num_rows]
                assert rows[0] == rows[1], rows
                p = timed(lambda sql=sql: plain(path, sql), args.repeats)
                g = timed(lambda sql=sql: worker.run(str(path), sql, max_rows=None, limits=limits,
                                                     lock_timeout=30), args.repeats)
                plain_all += p
                guarded_all += g
                print(f"{sql[:60]!r}: {rows[0]} rows; plain median "
                      f"{statistics.median(p) * 1e3:.2f} ms, guarded median "
                      f"{statistics.median(g) * 1e3:.2f} ms")
        finally:
            worker.close()
    p_med, g_med = statistics.median(plain_all), statistics.median(guarded_all)
    print(f"per console query: plain {p_med * 1e3:.2f} ms, guarded {g_med * 1e3:.2f} ms, "
          f"boundary cost {(g_med - p_med) * 1e3:.2f} ms")
    print(f"sql_guard_overhead: {g_med / p_med:.2f}")


if __name__ == "__main__":
    main()
