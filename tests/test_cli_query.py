"""`shardscope query` and `shardscope status` as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.setup import setup_tracing

ROOT = Path(__file__).resolve().parents[1]


def shardscope(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shardscope", *args],
        cwd=ROOT, capture_output=True, text=True, input=stdin, timeout=120,
    )


@pytest.fixture
def filled(db_path: Path) -> Path:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    for model, outcome in [("a", "success"), ("a", "failure"), ("b", "success")]:
        with tracing.inherit({A.MODEL_ID: model}):
            with tracing.span("invoke_agent s", SpanType.EPISODE, {A.EPISODE_OUTCOME: outcome}):
                pass
    tracing.shutdown()
    return db_path


def test_query_formats(filled: Path) -> None:
    sql = "SELECT model, count(*) AS n FROM episodes GROUP BY model ORDER BY model"
    table = shardscope("query", "--db", str(filled), sql)
    assert table.returncode == 0, table.stderr
    assert "2 rows" in table.stdout and "│ a" in table.stdout
    csv = shardscope("query", "--db", str(filled), "--format", "csv", sql)
    assert csv.stdout.splitlines() == ["model,n", "a,2", "b,1"]
    js = shardscope("query", "--db", str(filled), "-f", "json", "-", stdin=sql)
    assert json.loads(js.stdout) == [{"model": "a", "n": 2}, {"model": "b", "n": 1}]


def test_query_max_rows_truncates_and_says_so(filled: Path) -> None:
    out = shardscope("query", "--db", str(filled), "--max-rows", "1", "SELECT * FROM episodes")
    assert out.returncode == 0 and "1 row" in out.stdout and "more rows" in out.stdout


def test_schema_lists_views_with_descriptions(filled: Path) -> None:
    out = shardscope("query", "--db", str(filled), "--schema")
    assert out.returncode == 0
    for view in ("episodes", "steps", "llm_calls", "tool_calls", "messages", "token_events", "runs"):
        assert f"{view} (view)" in out.stdout
    assert "One row per task attempt" in out.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["query", "SELEC 1"], "syntax error"),
        (["query", "UPDATE spans SET name = 'x'"], "cannot change the store"),
        (["query"], "no SQL given"),
    ],
)
def test_errors_are_one_line_with_exit_code_1(filled: Path, args: list[str], fragment: str) -> None:
    out = shardscope(*args[:1], "--db", str(filled), *args[1:])
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and fragment in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_missing_store_error(tmp_path: Path) -> None:
    out = shardscope("query", "--db", str(tmp_path / "none.duckdb"), "SELECT 1")
    assert out.returncode == 1 and "shardscope demo" in out.stderr


def test_bad_cli_argument_is_a_usage_error(filled: Path) -> None:
    out = shardscope("query", "--db", str(filled), "--format", "xml", "SELECT 1")
    assert out.returncode == 2 and "xml" in out.stderr


def test_status_reports_counts_and_no_losses(filled: Path) -> None:
    out = shardscope("status", "--db", str(filled), "--json")
    data = json.loads(out.stdout)
    assert data["counts"]["spans"] == 3 and data["counts"]["episodes"] == 3
    assert data["problems"] == [] and data["writers"][0]["lost_spans"] == 0
    human = shardscope("status", "--db", str(filled))
    assert "no span lost, dropped or spilled" in human.stdout


def test_every_command_has_help() -> None:
    import typer.main

    from shardscope.cli import app

    commands = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"query", "status", "run", "demo", "models", "ui", "collect"} <= set(commands)
    assert shardscope("--help").returncode == 0
    for command in commands:
        sub = shardscope(command, "--help")
        assert sub.returncode == 0 and "Usage" in sub.stdout, command
        assert len(sub.stdout.splitlines()) > 5, f"{command} --help says too little"
