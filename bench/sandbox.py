"""Cost of the bubblewrap sandbox per ``run_tests`` call, against the old runner, same run.

Ours: ``run_pytest`` as ``run_tests`` calls it (bwrap namespaces, the workdir copied into a
tmpfs, the in-sandbox shim dropping root and setting limits, the verdict plugin on a pipe).
Baseline: what the tool did before: the same pytest command as a plain subprocess in the
workdir, its limits set by ``preexec_fn``. Same small test file (two tests), rounds
alternate, medians are compared. Also reported: the sql tool's child-process query against
the same query on an in-process connection.

Last line: ``sandbox_overhead: <ours / baseline seconds per call>``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from shardscope.scaffolds.tools import ToolContext, default_registry
from shardscope.scaffolds.tools.pytest_runner import run_pytest
from shardscope.scaffolds.tools.sandbox import bwrap_status, child_env

_TESTS = "def test_ok():\n    assert 1 + 1 == 2\n\ndef test_bad():\n    assert 1 == 2\n"


def _old_runner(workdir: Path, ctx: ToolContext) -> None:
    def limits() -> None:  # the old runner's preexec_fn, kept here as the baseline only
        memory = ctx.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (int(ctx.timeout_s) + 1, int(ctx.timeout_s) + 2))

    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"]
    env = child_env(str(workdir))
    with tempfile.TemporaryFile() as sink:
        subprocess.run(
            argv, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, preexec_fn=limits, timeout=ctx.timeout_s, check=False,
        )  # fmt: skip


def _ours(workdir: Path, ctx: ToolContext) -> None:
    run = run_pytest(workdir, None, ctx)
    assert run.done.sandboxed and run.verdict.ran == 2, run


def _timed(fn: Callable[[], object], samples: list[float]) -> None:
    start = time.perf_counter()
    fn()
    samples.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    bwrap, why = bwrap_status()
    if bwrap is None:
        sys.exit(f"bench/sandbox.py: no sandbox to measure: {why}")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "work"
        work.mkdir()
        (work / "test_bench.py").write_text(_TESTS)
        ctx = ToolContext(workdir=work, timeout_s=60, memory_mb=512)
        ours: list[float] = []
        old: list[float] = []
        for _ in range(args.rounds):
            _timed(lambda: _ours(work, ctx), ours)
            _timed(lambda: _old_runner(work, ctx), old)
        sql_child, sql_inproc = _sql_costs(Path(scratch), args.rounds)
    o, b = statistics.median(ours), statistics.median(old)
    print(f"rounds: {args.rounds}; bwrap: {bwrap}")
    print(f"run_tests sandboxed: median {o * 1000:.0f} ms per call")
    print(f"old runner (subprocess + preexec_fn): median {b * 1000:.0f} ms per call")
    print(f"sandbox cost: {(o - b) * 1000:+.0f} ms per call")
    print(f"sql tool (query in a child process): median {sql_child * 1000:.0f} ms per query")
    print(f"same query on an in-process connection: median {sql_inproc * 1000:.1f} ms per query")
    print(f"sandbox_overhead: {o / b:.2f}")


def _sql_costs(scratch: Path, rounds: int) -> tuple[float, float]:
    database = scratch / "data.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i, range % 7 AS k FROM range(100000)")
    query = "SELECT k, count(*) FROM t GROUP BY k ORDER BY k"
    ctx = ToolContext(workdir=scratch, dataset_path=database, timeout_s=30)
    tool = default_registry().get("sql")
    child: list[float] = []
    inproc: list[float] = []

    def direct() -> None:
        with duckdb.connect(str(database), read_only=True) as con:
            con.execute(query).fetchall()

    for _ in range(rounds):
        _timed(lambda: tool.run({"query": query}, ctx), child)
        _timed(direct, inproc)
    return statistics.median(child), statistics.median(inproc)


if __name__ == "__main__":
    main()
