"""Cost per query of the agent's ``sql`` tool, before and after its long-lived worker, in
one run.

Ours: ``SqlQuery.run`` as an episode calls it (statement check, then the query in one of the
tool's bounded worker processes: address-space, CPU and time limits, a locked read-only
connection kept open, one JSON line each way over pipes). Baseline: what the tool did before,
kept here as the baseline only: a fresh ``python -c`` child per query, which sets the same
limits, imports DuckDB, opens the dataset locked down, runs the query and prints JSON. Also
shown: the same query on a read-only connection kept open in this process (no boundary at
all). Rounds alternate; medians are compared. The tool's first call (which starts a worker)
is reported apart.

Last line: ``sql_tool_speedup: <baseline / ours median seconds per query>``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shardscope.scaffolds.tools import ToolContext, default_registry
from shardscope.scaffolds.tools.sandbox import child_env
from shardscope.scaffolds.tools.sql_worker import RUNTIME_ADDRESS_SPACE_MB, connection_config

QUERY = "SELECT k, count(*) AS n, sum(i) AS total FROM t GROUP BY k ORDER BY k"

# The per-query child of the tool before its worker (scaffolds/tools/sql.py until 2026-12-02).
_OLD_CHILD = r"""
import json, resource, sys, threading
job = json.loads(sys.argv[1])
for name, value in job["limits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
import duckdb
con = duckdb.connect(job["path"], read_only=True, config=job["config"])
con.execute("SET lock_configuration = true")
timer = threading.Timer(job["timeout_s"], con.interrupt)
timer.start()
try:
    cursor = con.execute(job["query"])
    columns = [d[0] for d in cursor.description or ()]
    rows = [[str(v)[:4000] for v in row] for row in cursor.fetchmany(job["rows"])]
    out = {"columns": columns, "rows": rows}
finally:
    timer.cancel()
print(json.dumps(out))
"""


def _old_tool(database: Path, scratch: Path, ctx: ToolContext) -> list[list[str]]:
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        job = {
            "path": str(database), "query": QUERY, "timeout_s": ctx.timeout_s, "rows": 101,
            "config": connection_config(ctx.memory_mb, Path(work) / "spill"),
            "limits": {"RLIMIT_AS": (ctx.memory_mb + RUNTIME_ADDRESS_SPACE_MB) << 20,
                       "RLIMIT_CPU": int(ctx.timeout_s + 20), "RLIMIT_CORE": 0},
        }  # fmt: skip
        done = subprocess.run([sys.executable, "-c", _OLD_CHILD, json.dumps(job)], cwd=work,
                              env=child_env(work), capture_output=True, text=True, check=True,
                              timeout=ctx.timeout_s + 20)
    rows: list[list[str]] = json.loads(done.stdout)["rows"]
    return rows


def _timed(fn: Callable[[], object], samples: list[float]) -> None:
    started = time.perf_counter()
    fn()
    samples.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        database = scratch / "data.duckdb"
        with duckdb.connect(str(database)) as con:
            con.execute("CREATE TABLE t AS SELECT range AS i, range % 7 AS k FROM range(100000)")
        ctx = ToolContext(workdir=scratch, dataset_path=database, timeout_s=30)
        tool = default_registry().get("sql")
        kept = duckdb.connect(str(database), read_only=True)

        def ours() -> None:
            result = tool.run({"query": QUERY}, ctx)
            assert result.ok and len(result.output.splitlines()) == 9, result

        def old() -> None:
            assert len(_old_tool(database, scratch, ctx)) == 7

        def plain() -> None:
            assert len(kept.execute(QUERY).fetchall()) == 7

        first: list[float] = []
        _timed(ours, first)
        times: dict[str, list[float]] = {"ours": [], "old": [], "plain": []}
        for _ in range(args.rounds):
            for name, fn in (("ours", ours), ("old", old), ("plain", plain)):
                _timed(fn, times[name])
        kept.close()
        tool.close()  # type: ignore[attr-defined]
    med = {name: statistics.median(samples) for name, samples in times.items()}
    print(f"rounds: {args.rounds}; the tool's first call (starts a worker): {first[0] * 1e3:.0f} ms")
    print(f"sql tool, long-lived worker: median {med['ours'] * 1e3:.1f} ms per query")
    print(f"sql tool before (a child per query): median {med['old'] * 1e3:.1f} ms per query")
    print(f"in-process kept connection, no boundary: median {med['plain'] * 1e3:.2f} ms per query")
    print(f"worker boundary cost: {(med['ours'] - med['plain']) * 1e3:.1f} ms per query")
    print(f"sql_tool_speedup: {med['old'] / med['ours']:.1f}")


if __name__ == "__main__":
    main()
