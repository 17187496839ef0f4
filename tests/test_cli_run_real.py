"""`shardscope run` as a user runs it: a real subprocess, the embedded SmolLM2-135M through
llama.cpp, a real DuckDB file, checked through the store's views; then `--resume latest`,
and a bad model name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
MAX_TOKENS = 48  # per call: keeps two episodes near ten seconds of CPU
MATRIX = [
    "-s", "arithmetic", "-m", MODEL, "-a", "react-tools", "--limit", "2",
    "-p", "react-tools.max_steps=2", "-p", f"react-tools.max_tokens_per_call={MAX_TOKENS}",
]
OUTCOMES = {"success", "failure", "protocol_error", "budget_exhausted"}  # not "error"


def shardscope(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, with no SHARDSCOPE_* settings leaking in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
    config = cwd / "empty.toml"
    config.write_text("", encoding="utf-8")
    env.update(SHARDSCOPE_CONFIG=str(config), SHARDSCOPE_STRICT_TRACING="1", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "shardscope", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def frame(db: Path, sql: str) -> pd.DataFrame:
    return read_frame(Store(db), sql)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> tuple[Path, str]:
    """One small matrix run into a fresh store: (store path, the run's stdout)."""
    cwd = tmp_path_factory.mktemp("cli_run")
    db = cwd / "s.duckdb"
    done = shardscope(cwd, "run", "--db", str(db), *MATRIX, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return db, done.stdout


@pytest.mark.llm
@pytest.mark.slow
def test_a_real_run_fills_every_view(ran: tuple[Path, str]) -> None:
    db, stdout = ran
    episodes = frame(db, "SELECT * FROM episodes ORDER BY task_id")
    assert len(episodes) == 2
    for column in ("suite", "task_id", "scaffold", "scaffold_hash", "model", "provider"):
        assert episodes[column].notna().all(), f"episodes.{column} is not set"
    assert set(episodes["suite"]) == {"arithmetic"} and episodes["task_id"].nunique() == 2
    assert set(episodes["scaffold"]) == {"react-tools"} and set(episodes["model"]) == {MODEL}
    assert set(episodes["provider"]) == {"llama_cpp"}
    # Same scaffold, provably: one hash for both episodes, a sha256.
    (scaffold_hash,) = set(episodes["scaffold_hash"])
    assert len(scaffold_hash) == 64 and int(scaffold_hash, 16) >= 0
    assert set(episodes["outcome"]) <= OUTCOMES, episodes[["outcome", "error"]].to_dict("records")
    assert episodes["steps"].between(1, 2).all() and episodes["llm_calls"].ge(1).all()

    steps = frame(db, "SELECT episode_id, count(*) AS n FROM steps GROUP BY ALL")
    assert set(steps["episode_id"]) == set(episodes["episode_id"])

    calls = frame(db, "SELECT * FROM llm_calls")
    assert set(calls["episode_id"]) == set(episodes["episode_id"])
    assert set(calls["provider"]) == {"llama_cpp"} and set(calls["model"]) == {MODEL}
    assert calls["input_tokens"].gt(0).all() and calls["output_tokens"].gt(0).all()
    # The scaffold parameter reached the model call.
    assert set(calls["max_tokens"]) == {MAX_TOKENS} and calls["output_tokens"].le(MAX_TOKENS).all()
    assert calls["streamed"].all() and not calls["status_code"].eq("ERROR").any()
    assert int(calls["input_tokens"].sum()) == int(episodes["input_tokens"].sum())

    tokens = frame(db, "SELECT span_id, string_agg(token, '' ORDER BY token_index) AS text, "
                       "count(*) AS n FROM token_events GROUP BY span_id")
    assert set(tokens["span_id"]) == set(calls["span_id"]), "a streamed call has no token events"
    streamed = calls.merge(tokens, on="span_id")
    for call in streamed.itertuples():
        raw_text = json.loads(call.raw_response)["text"]
        assert call.text == raw_text, "the token stream is not the text the model returned"
        assert 1 <= call.n <= call.output_tokens

    (run,) = frame(db, "SELECT * FROM runs").itertuples()
    assert (run.status, run.planned_episodes, run.completed_episodes, run.resumes) == (
        "finished", 2, 2, 0)
    assert f"run {run.run_id}: model x scaffold" in stdout
    assert MODEL in stdout and "react-tools" in stdout
    assert f"run {run.run_id} finished: 2 episodes run, 0 already done, 2 planned" in stdout


@pytest.mark.llm
@pytest.mark.slow
def test_resume_latest_of_a_finished_run_runs_nothing(ran: tuple[Path, str]) -> None:
    db, _ = ran
    before = frame(db, "SELECT episode_id FROM episodes")
    calls_before = frame(db, "SELECT count(*) AS n FROM llm_calls")["n"][0]
    done = shardscope(db.parent, "run", "--db", str(db), "--resume", "latest", "--no-progress")
    assert done.returncode == 0, done.stderr
    after = frame(db, "SELECT episode_id, episode_key FROM episodes")
    assert sorted(after["episode_id"]) == sorted(before["episode_id"]), "resume added episodes"
    assert after["episode_key"].is_unique
    calls = frame(db, "SELECT count(*) AS n, count(DISTINCT span_id) AS ids FROM llm_calls")
    assert (calls["n"][0], calls["ids"][0]) == (calls_before, calls_before), "the model was called again"
    (run,) = frame(db, "SELECT * FROM runs").itertuples()
    assert (run.planned_episodes, run.completed_episodes, run.resumes) == (2, 2, 1)
    assert f"run {run.run_id} finished: 0 episodes run, 2 already done, 2 planned" in done.stdout


def test_unknown_model_is_a_one_line_error(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    done = shardscope(tmp_path, "run", "--db", str(db), "-s", "arithmetic", "-m", "no-such-model",
                      "-a", "react-tools", "--no-progress")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: model 'no-such-model' is not in "), lines[0]
    assert "; known models: " in lines[0]
    assert MODEL in lines[0].split("known models: ", 1)[1].split(", ")
    assert not db.exists(), "a run with bad input must not create a store"
