"""``--executor ray`` against the local executor: the same 2,000-episode scripted matrix, same
run, same machine, each into its own DuckDB store; then the Ray run again with a worker
SIGKILLed mid-run.

The matrix: suites arithmetic and docs (10 tasks each, real task instances, tools and checks),
2 scripted models, react-tools, 50 seeds = 2,000 episodes; each episode is one scripted model
call that answers (the cost measured is the executor's, not a model's). Provider limit: the
scripted default (8 at once). The Ray cluster is local (2 CPUs, loopback, session files under
/tmp) and started before the clock starts: its start-up is printed on its own line.

Both runs count episodes from the store: stored episodes and distinct episode keys must both
equal 2,000. The kill run SIGKILLs the first pool worker once 500 episodes have come back;
Ray restarts it, the driver runs again exactly the episodes the store does not hold. Then
the same two Ray runs with every writer appending to a Parquet lake instead (exporter
``parquet``; counted from the lake).

Local and Ray runs alternate, ROUNDS each. Last line: ``ray_overhead_per_episode_ms: <(mean
ray seconds - mean local seconds) / 2000 x 1000>`` (wall-clock milliseconds Ray adds per
episode on this machine, cluster start excluded; worker start-up included).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.ray_executor import RayExecutor
from shardscope.scaffolds.runner.runner import Resources, Runner, RunReport
from shardscope.tracer.lake_store import LakeStore
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.spans import Tracing
from shardscope.tracer.store import Store
from tests.helpers import ray_toy

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("scripted-a", "scripted-b")
SPEC = MatrixSpec(suites=("arithmetic", "docs"), models=MODELS, scaffolds=("react-tools",),
                  seeds=50, limit_tasks=10, name="ray-bench")
EPISODES = 2000
KILL_AFTER = 500
ROUNDS = 2  # local and ray alternate, so a busy spell of the shared machine hits both


def answer(messages: Any, tools: Any, config: Any) -> Scripted:
    return Scripted(text="Final Answer: 42")


def scripted_resources(settings: Settings, tracing: Tracing) -> Resources:
    """The product's suites, tools and checks; scripted models (module-level: workers import it)."""
    from shardscope.scaffolds.tasks import check, load_suites
    from shardscope.scaffolds.tools import default_registry

    models = {m: TracedModel(ScriptedBackend(model=m, policy=answer), tracing, model_id=m)
              for m in MODELS}
    return Resources(suites=load_suites(), registry=default_registry(),
                     open_model=lambda m: models[m], provider_of=lambda m: "scripted",
                     check=check, known_models=lambda: list(MODELS))


class KillOnce(ray_toy.KillOnce):
    """SIGKILLs the first pool worker's process once KILL_AFTER episodes have come back."""

    kill_after = KILL_AFTER


def store_for(db: Path, sink: str) -> tuple[Settings, Store]:
    if sink == "duckdb":
        return Settings(db=db, flush_interval=0.1), Store(db)
    lake = db.with_suffix(".lake")
    return Settings(db=db, exporters=("parquet",), lake=lake, flush_interval=0.1), LakeStore(lake)


def run(db: Path, executor: type[RayExecutor] | None,
        sink: str = "duckdb") -> tuple[RunReport, float, Any]:
    settings, store = store_for(db, sink)
    tracing = setup_tracing(settings)
    remote = executor(settings, scripted_resources, tracing, store) if executor else None
    runner = Runner(tracing, scripted_resources(settings, tracing), progress=False, executor=remote)
    started = time.perf_counter()
    try:
        report = asyncio.run(runner.run(SPEC))
    finally:
        tracing.shutdown()
    return report, time.perf_counter() - started, remote


def counts(db: Path, sink: str) -> tuple[int, int]:
    row = read_frame(store_for(db, sink)[1], "SELECT count(*) AS n, count(DISTINCT episode_key) AS k "
                                "FROM episodes").iloc[0]
    return int(row.n), int(row.k)


def main() -> int:
    import ray

    work = Path(tempfile.mkdtemp(prefix="ray-bench-", dir="/tmp"))
    os.environ["PYTHONPATH"] = str(ROOT)  # workers import this module by name
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a loopback-only cluster:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # (see ray_executor._loopback_only)
    try:
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(work / "ray"),
                 _node_ip_address="127.0.0.1", log_to_driver=False, namespace="shardscope")
        print(f"ray_cluster_start_s: {time.perf_counter() - started:.1f}")
        results: dict[str, list[float]] = {}
        plan = [("local", None), ("ray", RayExecutor)] * ROUNDS + [("ray_sigkill", KillOnce)]
        plan += [("ray_lake", RayExecutor), ("ray_lake_sigkill", KillOnce)]
        for i, (label, executor) in enumerate(plan):
            db = work / f"{label}-{i}.duckdb"
            sink = "lake" if "lake" in label else "duckdb"
            report, seconds, remote = run(db, executor, sink)
            stored, keys = counts(db, sink)
            results.setdefault(label, []).append(seconds)
            extra = ""
            if remote is not None:
                extra = (f" lost_attempts={remote.lost_attempts} "
                         f"limit_peak={remote.limit_stats['scripted']['peak']}")
                if isinstance(remote, KillOnce):
                    extra += f" killed_pid={remote.killed_pid}"
            print(f"{label}: {seconds:.2f} s, {EPISODES / seconds:.1f} episodes/s, "
                  f"report ran={report.ran} stored_episodes={stored} distinct_keys={keys}{extra}")
            if not (report.ran == stored == keys == EPISODES):
                print(f"{label}: COUNTS NOT EXACT", file=sys.stderr)
                return 1
        ray_s, local_s = sum(results["ray"]) / ROUNDS, sum(results["local"]) / ROUNDS
        overhead_ms = (ray_s - local_s) / EPISODES * 1000
        print(f"mean of {ROUNDS} alternating rounds: local {local_s:.2f} s, ray {ray_s:.2f} s")
        print(f"ray_to_local_time_ratio: {ray_s / local_s:.2f}")
        print(f"ray_overhead_per_episode_ms: {overhead_ms:.2f}")
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
