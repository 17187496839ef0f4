"""``--executor ray`` on a real local Ray cluster (2 CPUs, loopback, session files under /tmp):
every episode stored exactly once, provider limits held across worker processes, a SIGKILLed
worker's episodes run again, interruption then ``--resume`` complete the run."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.ray_executor import RayExecutor, RayOptions
from shardscope.scaffolds.runner.runner import Runner, RunReport
from shardscope.tracer.lake_store import LakeStore
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests.helpers.ray_toy import MODELS, KillOnce, toy_resources

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local cluster for the module; its address, for driver processes to connect to."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE", LOOPBACK)}
    # Workers import the test resources (tests.helpers.ray_toy) by name; loopback only, so no
    # token (Ray would keep one under HOME, which every test replaces).
    os.environ["PYTHONPATH"] = str(ROOT)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ[LOOPBACK] = "0"  # else Ray binds every interface (see ray_executor._loopback_only)
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
             log_to_driver=False, namespace="shardscope")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp, ignore_errors=True)


def _settings(db: Path, sink: str = "duckdb") -> tuple[Settings, Store]:
    """Settings whose spans go to the DuckDB file ``db``, or to a Parquet lake beside it."""
    if sink == "duckdb":
        return Settings(db=db, flush_interval=0.1), Store(db)
    lake = db.with_suffix(".lake")
    return (Settings(db=db, exporters=("parquet",), lake=lake, flush_interval=0.1),
            LakeStore(lake))


def _run(db: Path, spec: MatrixSpec, executor_type: type[RayExecutor] = RayExecutor,
         sink: str = "duckdb", **toy: Any) -> tuple[RunReport, RayExecutor]:
    settings, store = _settings(db, sink)
    tracing = setup_tracing(settings, strict=True)
    factory = functools.partial(toy_resources, **toy)
    executor = executor_type(settings, factory, tracing, store, RayOptions())
    runner = Runner(tracing, factory(settings, tracing), progress=False, executor=executor)
    try:
        report = asyncio.run(runner.run(spec))
    finally:
        tracing.shutdown()
    return report, executor


def _episodes(db: Path, sink: str = "duckdb") -> Any:
    return read_frame(_settings(db, sink)[1], "SELECT e.episode_key, e.outcome, e.started_at, e.ended_at, "
                                 "s.writer_id, s.parent_span_id, s.links FROM episodes e "
                                 "JOIN spans s ON s.span_id = e.span_id")


@pytest.mark.parametrize("sink", ["duckdb", "lake"])
def test_every_episode_runs_once_on_the_cluster(cluster: str, db_path: Path, sink: str) -> None:
    spec = MatrixSpec(suites=("toy",), models=MODELS, scaffolds=("react-tools",), seeds=3)
    report, executor = _run(db_path, spec, sink=sink, tasks=5)
    assert (report.planned, report.ran, report.outcomes["success"]) == (30, 30, 30)
    episodes = _episodes(db_path, sink)
    assert len(episodes) == 30 and episodes.episode_key.nunique() == 30
    # Written by the pool's two worker processes, not by the driver; each its own trace root,
    # linked to the run span (one trace per episode, docs/attributes.md).
    assert episodes.writer_id.nunique() == 2
    if sink == "lake":  # each writer its own partition: driver + 2 workers, no DuckDB file
        writers = {p.name for p in (db_path.with_suffix(".lake")).rglob("writer=*")}
        assert len(writers) == 3 and not db_path.exists()
    run = read_frame(_settings(db_path, sink)[1], "SELECT r.status, r.completed_episodes, s.span_id FROM runs r "
                                      "JOIN spans s ON s.run_id = r.run_id AND s.span_type = 'run'")
    assert (run.status[0], run.completed_episodes[0]) == ("finished", 30)
    assert set(episodes.parent_span_id) == {None}
    assert {json.loads(text)[0]["span_id"] for text in episodes.links} == {run.span_id[0]}
    assert executor.lost_attempts == 0


def test_provider_limit_holds_across_worker_processes(cluster: str, db_path: Path) -> None:
    spec = MatrixSpec(suites=("toy",), models=MODELS, scaffolds=("react-tools",), seeds=2,
                      concurrency={"scripted": 1})
    report, executor = _run(db_path, spec, tasks=4, delay=0.02)
    assert report.ran == 16
    assert executor.limit_stats["scripted"] == {"limit": 1, "peak": 1, "held": 0}
    episodes = _episodes(db_path).sort_values("started_at")
    assert episodes.writer_id.nunique() == 2  # both processes ran episodes ...
    starts, ends = list(episodes.started_at), list(episodes.ended_at)
    # ... never two at once: each episode starts after the previous one ended.
    assert all(start >= end for start, end in zip(starts[1:], ends[:-1], strict=True))


@pytest.mark.parametrize("sink", ["duckdb", "lake"])
def test_a_sigkilled_worker_loses_no_episode_and_doubles_none(cluster: str, db_path: Path,
                                                              sink: str) -> None:
    spec = MatrixSpec(suites=("toy",), models=MODELS, scaffolds=("react-tools",), seeds=4,
                      concurrency={"scripted": 4})
    report, executor = _run(db_path, spec, KillOnce, sink, tasks=5, delay=0.05)
    assert executor.lost_attempts >= 1  # the kill hit episodes in flight
    assert (report.planned, report.ran, report.outcomes["success"]) == (40, 40, 40)
    episodes = _episodes(db_path, sink)
    assert len(episodes) == 40 and episodes.episode_key.nunique() == 40
    assert executor.limit_stats["scripted"]["held"] == 0  # the dead worker's permits came back
    assert executor.limit_stats["scripted"]["peak"] <= 4


def _driver(db: Path, address: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.ray_toy", "--db", str(db), "--address", address,
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def test_interrupted_ray_run_resumes_exactly(cluster: str, db_path: Path) -> None:
    driver = _driver(db_path, cluster, "--delay", "0.1")
    assert driver.stdout is not None
    announced = [driver.stdout.readline() for _ in range(6)]
    assert all(line.startswith("episode ") for line in announced), announced
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 128 + signal.SIGTERM, err[-2000:]
    store = Store(db_path)
    first = read_frame(store, "SELECT status, completed_episodes FROM runs")
    assert first.status[0] == "interrupted" and 6 <= first.completed_episodes[0] < 48

    resumed = _driver(db_path, cluster, "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    summary = out.strip().splitlines()[-1]
    ran = int(summary.split("ran=")[1].split()[0])
    skipped = int(summary.split("skipped=")[1].split()[0])
    assert skipped == first.completed_episodes[0] and ran + skipped == 48, summary
    episodes = _episodes(db_path)
    assert len(episodes) == 48 and episodes.episode_key.nunique() == 48
    run = read_frame(store, "SELECT status, completed_episodes FROM runs")
    assert (run.status[0], run.completed_episodes[0]) == ("finished", 48)


@pytest.mark.parametrize("sink", ["duckdb", "lake"])
def test_cli_run_with_the_ray_executor(cluster: str, tmp_path: Path, sink: str) -> None:
    """The real command on a shipped suite, its workers rebuilding the catalog and suites from
    the settings (two scripted catalog models), on the cluster named by RAY_ADDRESS; into the
    DuckDB store, or only into a Parquet lake (SHARDSCOPE_EXPORTERS=parquet)."""
    answers = ", ".join(['"Final Answer: 42"'] * 40)
    catalog = tmp_path / "models.toml"
    catalog.write_text("".join(f'[models.{name}]\nbackend = "scripted"\nmodel = "{name}"\n'
                               f"responses = [{answers}]\n\n" for name in ("echo-a", "echo-b")))
    db = tmp_path / "cli.duckdb"
    env = {**os.environ, "RAY_ADDRESS": cluster, "RAY_AUTH_MODE": "disabled",
           "SHARDSCOPE_MODELS_FILE": str(catalog), "COLUMNS": "200"}
    if sink == "lake":
        env |= {"SHARDSCOPE_EXPORTERS": "parquet", "SHARDSCOPE_LAKE": str(tmp_path / "lake")}
    result = subprocess.run(
        [sys.executable, "-m", "shardscope", "run", "-s", "arithmetic", "-m", "echo-a,echo-b",
         "-a", "react-tools", "--limit", "3", "--seeds", "2", "--concurrency", "scripted=3",
         "--executor", "ray", "--db", str(db), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "echo-a" in result.stdout and "echo-b" in result.stdout  # the summary table
    store = Store(db) if sink == "duckdb" else LakeStore(tmp_path / "lake")
    episodes = read_frame(store, "SELECT episode_key, model, outcome, writer_id FROM episodes "
                                 "JOIN spans USING (span_id)")
    assert len(episodes) == 12 and episodes.episode_key.nunique() == 12
    assert set(episodes.outcome) <= {"success", "failure"}  # each worker opened its own models
    assert (sink == "lake") == (not db.exists())
    runs = read_frame(store, "SELECT status, planned_episodes, completed_episodes FROM runs")
    assert list(runs.iloc[0]) == ["finished", 12, 12]


def test_each_local_model_is_pinned_to_its_own_worker_process(cluster: str, db_path: Path) -> None:
    """Provider llama_cpp (embedded models; scripted stand-ins here): an actor per model, so a
    model's episodes all run in one process, and the two models in two; each model is told the
    provider's concurrency, as the local runner tells it (the local backend's parallel slots)."""
    spec = MatrixSpec(suites=("toy",), models=MODELS, scaffolds=("react-tools",), seeds=2,
                      concurrency={"llama_cpp": 2})
    report, executor = _run(db_path, spec, tasks=3, provider="llama_cpp")
    assert (report.planned, report.ran) == (12, 12)
    episodes = read_frame(Store(db_path), "SELECT e.model, s.writer_id FROM episodes e "
                                          "JOIN spans s ON s.span_id = e.span_id")
    writers = episodes.groupby("model").writer_id.nunique()
    assert dict(writers) == {"toy-a": 1, "toy-b": 1}
    assert episodes.writer_id.nunique() == 2
    assert set(executor.worker_pids) == {"model-toy-a", "model-toy-b"}
    assert "llama_cpp" not in executor.limit_stats  # limited per model actor, not cluster-wide
    calls = read_frame(Store(db_path), "SELECT raw_request FROM llm_calls")
    assert len(calls) >= 12 and {json.loads(r)["planned"] for r in calls.raw_request} == {2}
