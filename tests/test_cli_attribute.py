"""`shardscope attribute` as a user runs it: on a store recorded with the embedded SmolLM2
model (llm), and its clear one-line errors for bad input (a model that cannot score, a store
recorded without message content, no calls at all)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.tracer.setup import setup_tracing
from tests import fakes
from tests.helpers.toy_run import policy
from tests.test_cli_run_real import frame

ROOT = Path(__file__).resolve().parents[1]


def cli(cwd: Path, *args: str, config: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
    (cwd / "config.toml").write_text(config, encoding="utf-8")
    env.update(SHARDSCOPE_CONFIG=str(cwd / "config.toml"), SHARDSCOPE_STRICT_TRACING="1",
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "shardscope", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def scripted_store(db: Path, model: str, *, capture_content: bool = True) -> None:
    """Two toy episodes of a scripted policy recorded under the model id ``model``."""
    tracing = setup_tracing(Settings(db=db, flush_interval=0.1, capture_content=capture_content))
    models = {model: TracedModel(ScriptedBackend(model=model, policy=policy(0.0)), tracing,
                                 model_id=model)}
    spec = MatrixSpec(suites=("toy",), models=(model,), scaffolds=("react-tools",), seeds=1)
    try:
        asyncio.run(Runner(tracing, fakes.resources(models, tasks=2), progress=False).run(spec))
    finally:
        tracing.shutdown()


def test_a_hosted_model_says_it_cannot_score(tmp_path: Path) -> None:
    db = tmp_path / "hosted.duckdb"
    scripted_store(db, "gpt-4o-mini")
    done = cli(tmp_path, "attribute", "--db", str(db))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "'gpt-4o-mini'" in done.stderr and "cannot score a recorded output" in done.stderr
    assert "shardscope ablate" in done.stderr


def test_a_store_without_message_content_says_so(tmp_path: Path) -> None:
    db = tmp_path / "bare.duckdb"
    scripted_store(db, "smollm2-135m-instruct", capture_content=False)
    done = cli(tmp_path, "attribute", "--db", str(db))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "capture_content = false" in done.stderr


def test_no_calls_of_the_named_model(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    scripted_store(db, "gpt-4o-mini")
    done = cli(tmp_path, "attribute", "--db", str(db), "-m", "qwen2.5-coder-0.5b-instruct")
    assert done.returncode == 1 and "no recorded llm calls of qwen2.5-coder-0.5b-instruct" in done.stderr


def test_tasks_picks_the_calls_of_matching_tasks(tmp_path: Path) -> None:
    from shardscope.commands.attribute import Limits
    from shardscope.tracer.queries.attributions import recorded_calls
    from shardscope.tracer.store import Store

    db = tmp_path / "tasks.duckdb"
    scripted_store(db, "smollm2-135m-instruct")
    calls = recorded_calls(Store(db), (), ())
    assert set(calls.task_id) == {"t0", "t1"}
    assert set(Limits(tasks=("t1",)).select(calls).task_id) == {"t1"}
    assert set(Limits(tasks=("x*", "t*")).select(calls).task_id) == {"t0", "t1"}
    done = cli(tmp_path, "attribute", "--db", str(db), "-t", "nothing*")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "check --suite, --scaffolds and --tasks" in done.stderr


@pytest.mark.llm
@pytest.mark.slow
def test_attribute_scores_a_recorded_smollm2_episode(tmp_path: Path, smollm2_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    ran = cli(tmp_path, "run", "--db", str(db), "-s", "arithmetic", "-m", "smollm2-135m-instruct",
              "-a", "react-tools", "--tasks", "arith-001", "-p", "react-tools.max_steps=2",
              "-p", "react-tools.max_tokens_per_call=24", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    done = cli(tmp_path, "attribute", "--db", str(db), "--mode", "removed")
    assert done.returncode == 0, done.stderr
    rows = frame(db, "SELECT * FROM attributions")
    calls = frame(db, "SELECT count(*) AS n FROM llm_calls").n[0]
    assert rows.span_id.nunique() == calls and set(rows["mode"]) == {"removed"}
    scored = rows[rows.status == "scored"]
    assert len(scored) >= 1 and scored.delta_logp.notna().all()
    assert (scored.base_logp < 0).all() and (scored.base_action_logp <= 0).all()
    text = " ".join(done.stdout.split())
    assert "likelihood attribution" in text and "forward passes" in text
    assert f"{len(rows)} rows in the store's `attributions` table" in text  # table cells may wrap
    print(done.stdout)
