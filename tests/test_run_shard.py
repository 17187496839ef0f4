"""``run --shard i/N``: N shards partition the matrix exactly (every episode in one shard), the
same way in every process, and bad values are one-line errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from shardscope.config.errors import ConfigError
from shardscope.config.settings import Settings
from shardscope.scaffolds.runner.matrix import MatrixSpec, expand, in_shard
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.runner.shard import parse_shard, shard_of
from shardscope.scaffolds.tasks import load_suites
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests.helpers.ray_toy import MODELS, toy_resources

ROOT = Path(__file__).resolve().parents[1]


def _plan(spec: MatrixSpec) -> list:
    suites = load_suites()
    return expand(spec, suites, dict.fromkeys(spec.scaffolds, "0" * 64))


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_the_shards_partition_the_plan_exactly(count: int) -> None:
    base = MatrixSpec(suites=("arithmetic", "village"), models=("m1", "m2"),
                      scaffolds=("react-tools", "react-text"), seeds=3, ablations="both")
    plan = _plan(base)
    assert len(plan) > 100
    shards = [in_shard(MatrixSpec(**{**base.__dict__, "shard": f"{i}/{count}"}), plan)
              for i in range(count)]
    seen = Counter(e.key for shard in shards for e in shard)
    assert set(seen) == {e.key for e in plan} and set(seen.values()) == {1}  # all, once each
    if count > 1:  # no shard is empty or takes (nearly) everything
        assert all(0 < len(shard) < len(plan) for shard in shards)
    for shard in shards:  # an ablation travels with its baseline
        keys = {e.key for e in shard}
        assert all(e.baseline_key in keys for e in shard if e.baseline_key)


def test_the_partition_is_the_same_in_another_process() -> None:
    keys = [f"arithmetic/arith-{i:03d}/react-tools@abc/m/seed0" for i in range(50)]
    here = [shard_of(k, 5) for k in keys]
    code = ("import sys, json; from shardscope.scaffolds.runner.shard import shard_of; "
            "print(json.dumps([shard_of(k, 5) for k in json.loads(sys.stdin.read())]))")
    env = {**os.environ, "PYTHONHASHSEED": "123"}  # Python's own hash would differ
    out = subprocess.run([sys.executable, "-c", code], input=repr(keys).replace("'", '"'),
                         capture_output=True, text=True, env=env, check=True).stdout
    assert [int(x) for x in out.strip().strip("[]").split(",")] == here


@pytest.mark.parametrize(("text", "fragment"), [
    ("4/4", "i is 0-based and must be below N (0/4 .. 3/4), got 4"),
    ("1/0", "N must be between 1 and 100000, got 0"),
    ("-1/4", "--shard must look like i/N"),
    ("a/b", "--shard must look like i/N"),
    ("2", "--shard must look like i/N"),
])
def test_bad_shards_say_what_to_type(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_shard(text)
    assert fragment in str(raised.value)


def test_shard_runs_together_store_the_whole_matrix_once(db_path: Path) -> None:
    spec = MatrixSpec(suites=("toy",), models=MODELS, scaffolds=("react-tools",), seeds=3)
    settings = Settings(db=db_path, flush_interval=0.1)
    planned = []
    for i in range(3):
        tracing = setup_tracing(settings, strict=True)
        runner = Runner(tracing, toy_resources(settings, tracing, tasks=4), progress=False)
        try:
            report = asyncio.run(runner.run(MatrixSpec(**{**spec.__dict__, "shard": f"{i}/3"})))
        finally:
            tracing.shutdown()
        planned.append(report.planned)
        assert report.ran == report.planned
    assert sum(planned) == 24
    store = Store(db_path)
    runs = read_frame(store, "SELECT planned_episodes, completed_episodes FROM runs")
    assert sorted(runs.planned_episodes) == sorted(planned)
    keys = read_frame(store, "SELECT episode_key FROM episodes").episode_key
    assert len(keys) == 24 and keys.nunique() == 24
    config = read_frame(store, "SELECT CAST(config AS VARCHAR) AS c FROM runs").c
    assert {MatrixSpec.from_json(c).shard for c in config} == {"0/3", "1/3", "2/3"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardscope", *args], capture_output=True,
                          text=True, cwd=os.getcwd(), timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (("--shard", "3/3"), "error: --shard 3/3: i is 0-based and must be below N (0/3 .. 2/3), got 3"),
    (("--shard", "x"), "error: --shard must look like i/N (0-based: 0/4 .. 3/4 for 4 shards), got 'x'"),
    (("--executor", "dask"), "error: --executor must be one of local, ray, got 'dask'"),
])
def test_cli_bad_shard_or_executor_is_one_line(tmp_path: Path, args: tuple[str, ...],
                                               message: str) -> None:
    db = tmp_path / "s.duckdb"
    result = _cli("run", "-s", "arithmetic", "-m", "smollm2-135m-instruct", "-a", "react-tools",
                  "--db", str(db), *args)
    assert result.returncode != 0
    assert result.stderr.strip() == message
    assert not db.exists()  # refused before anything was recorded


def test_cli_resume_refuses_a_new_shard(tmp_path: Path) -> None:
    result = _cli("run", "--resume", "latest", "--shard", "0/2", "--db", str(tmp_path / "s.duckdb"))
    assert result.returncode != 0
    assert "--resume takes the matrix from the stored run; drop --shard" in result.stderr


def test_cli_ray_executor_without_ray_names_the_extra(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    code = ("import sys; sys.modules['ray'] = None; from shardscope.cli import main; "
            "sys.argv = ['shardscope'] + sys.argv[1:]; main()")
    result = subprocess.run(
        [sys.executable, "-c", code, "run", "-s", "arithmetic", "-m", "smollm2-135m-instruct",
         "-a", "react-tools", "--executor", "ray", "--db", str(db)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip() == "error: --executor ray needs Ray: pip install 'shardscope[ray]'"
    assert not db.exists()  # refused before the run started
