"""The matrix runner: counts, summary, unknown names, interruption and resume."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shardscope.commands.run import summary_of
from shardscope.config.errors import ConfigError
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec, expand
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.tasks import Ablation
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.queries.runs import completed_episode_keys
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes
from tests.helpers.toy_run import policy

ROOT = Path(__file__).resolve().parents[1]


def make_runner(db: Path, delay: float = 0.0, tasks: int = 2):
    tracing = setup_tracing(Settings(db=db, flush_interval=0.1), strict=True)
    models = {n: TracedModel(ScriptedBackend(model=n, policy=policy(delay)), tracing, model_id=n)
              for n in ("toy-a", "toy-b")}
    return tracing, Runner(tracing, fakes.resources(models, tasks=tasks), progress=False)


SPEC = MatrixSpec(suites=("toy",), models=("toy-a", "toy-b"), scaffolds=("react-tools",), seeds=2)


def test_full_matrix_and_summary(db_path: Path) -> None:
    tracing, runner = make_runner(db_path)
    report = asyncio.run(runner.run(SPEC))
    tracing.shutdown()
    assert (report.planned, report.ran, report.skipped) == (8, 8, 0)
    store = Store(db_path)
    run = read_frame(store, "SELECT * FROM runs").iloc[0]
    assert (run.status, run.planned_episodes, run.completed_episodes, run.successes) == ("finished", 8, 8, 8)
    summary = summary_of(store, report.run_id)
    assert list(summary.model) == ["toy-a", "toy-b"]
    assert list(summary.episodes) == [4, 4] and list(summary.success_rate) == [1.0, 1.0]
    keys = read_frame(store, "SELECT episode_key, seed FROM episodes")
    assert keys.episode_key.nunique() == 8 and set(keys.seed) == {0, 1}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (MatrixSpec(suites=("toy",), models=("gpt-9",), scaffolds=("react-tools",)),
         "unknown model 'gpt-9'; known models: toy-a, toy-b"),
        (MatrixSpec(suites=("nope",), models=("toy-a",), scaffolds=("react-tools",)),
         "unknown suite 'nope'; known suites: toy"),
        (MatrixSpec(suites=("toy",), models=("toy-a",), scaffolds=("reflexion",)),
         "unknown scaffold 'reflexion'"),
        (MatrixSpec(suites=("toy",), models=("toy-a",), scaffolds=("react-tools",), tasks=("zz*",)),
         "no task matched"),
    ],
)
def test_unknown_names_are_listed(db_path: Path, spec: MatrixSpec, fragment: str) -> None:
    tracing, runner = make_runner(db_path)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        asyncio.run(runner.run(spec))
    tracing.shutdown()


def test_bad_matrix_values() -> None:
    with pytest.raises(ConfigError, match="seeds must be >= 1"):
        MatrixSpec(suites=("toy",), models=("a",), scaffolds=("s",), seeds=0)
    with pytest.raises(ConfigError, match="models listed twice: a"):
        MatrixSpec(suites=("toy",), models=("a", "a"), scaffolds=("s",))


def test_cancelled_run_resumes_without_duplicates_or_losses(db_path: Path) -> None:
    tracing, runner = make_runner(db_path, delay=0.05, tasks=3)

    async def run_then_cancel():
        task = asyncio.create_task(runner.run(SPEC))
        while runner.last_report is None or runner.last_report.ran < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        return await task

    first = asyncio.run(run_then_cancel())
    tracing.shutdown()
    assert first.interrupted and 4 <= first.ran < 12
    store = Store(db_path)
    done = completed_episode_keys(store, first.run_id)
    assert len(done) == first.ran  # the interrupted in-flight episodes left no episode row
    run = read_frame(store, "SELECT status FROM runs").iloc[0]
    assert run.status == "interrupted"

    tracing, runner = make_runner(db_path, tasks=3)
    second = asyncio.run(runner.run(SPEC, run_id=first.run_id, done_keys=done))
    tracing.shutdown()
    assert second.skipped == len(done) and second.ran == 12 - len(done)
    rows = read_frame(store, "SELECT episode_key FROM episodes WHERE run_id = ?", [first.run_id])
    assert len(rows) == 12 and rows.episode_key.nunique() == 12
    run = read_frame(store, "SELECT status, resumes, completed_episodes FROM runs").iloc[0]
    assert (run.status, run.resumes, run.completed_episodes) == ("finished", 1, 12)


@pytest.mark.slow
def test_sigkilled_run_resumes_without_duplicates_or_losses(db_path: Path) -> None:
    cmd = [sys.executable, "-m", "tests.helpers.toy_run", "--db", str(db_path), "--tasks", "6"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    announced = [proc.stdout.readline() for _ in range(5)]
    assert all(line.startswith("episode ") for line in announced), proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    store = Store(db_path)
    run_id = read_frame(store, "SELECT run_id FROM runs").run_id[0]
    survived = completed_episode_keys(store, run_id)
    assert {line.split()[1] for line in announced} <= survived  # nothing announced was lost
    resumed = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipped={len(survived)}" in resumed.stdout
    rows = read_frame(store, "SELECT episode_key FROM episodes WHERE run_id = ?", [run_id])
    assert len(rows) == 24 and rows.episode_key.nunique() == 24


def test_ablation_expansion_links_to_the_baseline() -> None:
    suites = {"toy": fakes.Suite("toy", (fakes.Task("t0"),))}
    spec = MatrixSpec(suites=("toy",), models=("m",), scaffolds=("s",), ablations="both")
    episodes = expand(spec, suites, {"s": "h" * 64})
    assert len(episodes) == 1 + 2 * 2  # baseline + (2 shards x removed/replaced)
    base = episodes[0]
    ablated = [e for e in episodes if e.ablation]
    assert {e.ablation for e in ablated} == {Ablation("a", "removed"), Ablation("a", "replaced"),
                                             Ablation("b", "removed"), Ablation("b", "replaced")}
    assert all(e.baseline_key == base.key for e in ablated)
    assert len({e.key for e in episodes}) == 5


def test_a_shard_without_replacement_is_only_removed() -> None:
    from dataclasses import replace

    task = fakes.Task("t0")
    bare = replace(task, shards=(task.shards[0], replace(task.shards[1], replacement=None)))
    spec = MatrixSpec(suites=("toy",), models=("m",), scaffolds=("s",), ablations="both")
    episodes = expand(spec, {"toy": fakes.Suite("toy", (bare,))}, {"s": "h" * 64})
    kept = task.shards[0].name
    gone = bare.shards[1].name
    assert {e.ablation for e in episodes if e.ablation} == {
        Ablation(kept, "removed"), Ablation(kept, "replaced"), Ablation(gone, "removed")}


def test_summary_se_is_clustered_by_task_as_in_the_app(db_path: Path) -> None:
    from shardscope.analysis.summaries import model_summary
    from shardscope.tracer import attributes as A
    from shardscope.tracer.attributes import SpanType
    from shardscope.tracer.queries.overview import episode_cube

    # Two seeds of three tasks: t0 succeeds twice, t1 never, t2 once (p = 1/2). Seeds of one
    # task are not independent, so the SE is CR1 over tasks: sqrt(3/2 * (1 + 1 + 0)) / 6.
    outcomes = {"t0": ("success", "success"), "t1": ("failure", "failure"),
                "t2": ("success", "failure"),
                "t3": ("success", "failure")}  # model "single": one task, the binomial fallback
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with tracing.inherit({A.RUN_ID: "r1"}):
        for task, results in outcomes.items():
            for seed, outcome in enumerate(results):
                scaffold, model = ("s", "m") if task != "t3" else ("s", "single")
                with tracing.inherit({A.EPISODE_ID: f"{model}-{task}-{seed}", A.MODEL_ID: model}):
                    with tracing.span("invoke_agent s", SpanType.EPISODE, {
                            A.SUITE_NAME: "toy", A.TASK_ID: task, A.SCAFFOLD_NAME: scaffold,
                            A.SEED: seed, A.EPISODE_OUTCOME: outcome}):
                        pass
    tracing.shutdown()
    store = Store(db_path)
    cli = summary_of(store, "r1").set_index("model")
    assert cli.loc["m", "success_se"] == pytest.approx(3 ** 0.5 / 6)
    assert cli.loc["m", "success_se"] != pytest.approx((0.25 / 5) ** 0.5)  # not binomial
    assert cli.loc["single", "success_se"] == pytest.approx(0.5) and cli.loc["m", "tasks"] == 3
    app = model_summary(episode_cube(store, ["r1"]), by=("model", "scaffold")).set_index("model")
    for model in ("m", "single"):
        assert cli.loc[model, "success_rate"] == pytest.approx(app.loc[model, "success_rate"])
        assert cli.loc[model, "success_se"] == pytest.approx(app.loc[model, "success_se"])
        for bound in ("ci_low", "ci_high"):  # one estimator: stats.estimate
            assert cli.loc[model, bound] == pytest.approx(app.loc[model, bound])
