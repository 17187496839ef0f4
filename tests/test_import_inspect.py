"""`shardscope import inspect` (issue 12): logs made by the real inspect_ai (a tiny task with a
tool on its mockllm provider, tests/helpers/inspect_logs.py) round-trip into episodes, steps,
LLM and tool calls that match the log event for event; a re-import is a no-op; `compare`
pairs Inspect episodes with shardscope's own on the same tasks; bad logs are one-line errors
that write nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store
from tests.helpers.collect import rows

if importlib.util.find_spec("inspect_ai") is None:
    if os.environ.get("CI"):
        raise RuntimeError("inspect_ai is not installed: CI installs the `inspect` extra")
    pytest.skip("needs the inspect extra (inspect_ai)", allow_module_level=True)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inspect_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An .eval log (mockllm/adder, 2 epochs) and a .json log (mockllm/guesser, 1 epoch)."""
    out = tmp_path_factory.mktemp("inspect-logs")
    env = {**os.environ, "HOME": str(out), "INSPECT_LOG_DIR": str(out)}
    done = subprocess.run([sys.executable, "-m", "tests.helpers.inspect_logs", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    paths = [Path(line) for line in done.stdout.split()]
    return {"adder": next(p for p in paths if p.suffix == ".eval"),
            "guesser": next(p for p in paths if p.suffix == ".json")}


def _import(db: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardscope", "import", "inspect", *map(str, paths),
                           "--db", str(db)], capture_output=True, text=True, timeout=300)


def _events(path: Path) -> list[Any]:
    from inspect_ai.log import read_eval_log

    return list(read_eval_log(str(path)).samples or ())


@pytest.fixture(scope="module")
def imported(inspect_logs: dict[str, Path], fixture_store: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The UI fixture's store (a shardscope run on suite toy) with both logs imported."""
    db = tmp_path_factory.mktemp("imported") / "store.duckdb"
    shutil.copy(fixture_store, db)
    done = _import(db, inspect_logs["adder"], inspect_logs["guesser"])
    assert done.returncode == 0, done.stderr
    return db


EPISODE = ("SELECT task_id, seed, outcome, score, steps, llm_calls, tool_calls, tool_errors, "
           "scaffold, suite, provider, error IS NOT NULL FROM episodes WHERE model = ? ORDER BY ALL")


def test_samples_become_episodes(imported: Path) -> None:
    with Store(imported).reader() as con:
        adder = con.execute(EPISODE, ["mockllm/adder"]).fetchall()
        guesser = con.execute(EPISODE, ["mockllm/guesser"]).fetchall()
    scaffold = "inspect:use_tools+generate"
    assert adder == [(t, seed, "success", 1.0, 2, 2, 1, 0, scaffold, "toy", "mockllm", False)
                     for t in ("t0", "t1", "t2") for seed in (0, 1)]
    assert guesser == [
        ("t0", 0, "success", 1.0, 2, 2, 1, 0, scaffold, "toy", "mockllm", False),
        ("t1", 0, "failure", 0.0, 1, 1, 0, 0, scaffold, "toy", "mockllm", False),
        ("t2", 0, "error", None, 2, 2, 1, 1, scaffold, "toy", "mockllm", True),
    ]
    runs = rows(imported, "SELECT name, status, planned_episodes, completed_episodes, successes "
                          "FROM runs WHERE run_id LIKE 'inspect-%' ORDER BY name")
    assert runs == [("inspect toy mockllm/adder", "finished", 6, 6, 6),
                    ("inspect toy mockllm/guesser", "finished", 3, 3, 1)]


def test_model_and_tool_events_match_the_log(imported: Path, inspect_logs: dict[str, Path]) -> None:
    for name, path in inspect_logs.items():
        model = f"mockllm/{name}"
        samples = _events(path)
        model_events = [e for s in samples for e in s.events if e.event == "model"]
        tool_events = [e for s in samples for e in s.events if e.event == "tool"]
        calls = rows(imported, "SELECT input_tokens, output_tokens, started_at, duration_ms, "
                               "attempts, finish_reasons, input_messages, output_messages FROM "
                               "llm_calls WHERE model = ? ORDER BY started_at, step_index"
                     .replace("?", f"'{model}'"))
        assert len(calls) == len(model_events)
        expected = sorted(model_events, key=lambda e: e.timestamp)
        for call, event in zip(calls, expected, strict=True):
            usage = event.output.usage
            assert (call[0], call[1]) == ((usage.input_tokens, usage.output_tokens) if usage
                                          else (None, None))
            assert call[2] == event.timestamp.replace(microsecond=call[2].microsecond)
            assert call[4] == (event.retries or 0) + 1
            inputs = json.loads(call[6])
            assert [m["role"] for m in inputs] == [m.role for m in event.input if m.role != "system"]
            if not event.error:
                assert json.loads(call[5]) == [{"stop": "stop", "tool_calls": "tool_call"}[
                    c.stop_reason] for c in event.output.choices]
                assert json.loads(call[7])[0]["parts"]
        tools = rows(imported, "SELECT call_id, tool_name, arguments, result, ok FROM tool_calls "
                               f"WHERE model = '{model}' ORDER BY call_id")
        assert tools == sorted((e.id, e.function, json.dumps(e.arguments, separators=(",", ":")),
                                e.result, e.error is None) for e in tool_events)
    # the tokens of a run add up to the log's own usage
    total = rows(imported, "SELECT sum(input_tokens), sum(output_tokens) FROM episodes "
                           "WHERE model = 'mockllm/adder'")[0]
    usage = [u for s in _events(inspect_logs["adder"]) for u in s.model_usage.values()]
    assert total == (sum(u.input_tokens for u in usage), sum(u.output_tokens for u in usage))


def test_reimport_adds_nothing(imported: Path, inspect_logs: dict[str, Path]) -> None:
    count = "SELECT count(*), sum(hash(attributes)) FROM spans"
    before = rows(imported, count)
    again = _import(imported, inspect_logs["adder"], inspect_logs["guesser"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already imported") == 2
    assert rows(imported, count) == before


def test_compare_pairs_inspect_and_shardscope_episodes(imported: Path) -> None:
    from shardscope.analysis.compare import compare

    result = compare(Store(imported), Selection(suites=("toy",),
                     models=("alpha", "mockllm/adder", "mockllm/guesser")), clusters=False)
    assert len(result.systems) == 4  # alpha under its two scaffolds, and the two Inspect models
    pairs = result.comparisons
    assert len(pairs) == 6 and set(pairs.tasks) == {3}  # every pair on the same three tasks
    estimates = result.estimates.set_index("system")
    adder = next(s for s in result.systems if s.startswith("mockllm/adder"))
    guesser = next(s for s in result.systems if s.startswith("mockllm/guesser"))
    assert estimates.loc[adder, "success_rate"] == 1.0
    assert estimates.loc[guesser, "success_rate"] == pytest.approx(1 / 3)
    # where the guesser parts from the adder: at the first step of t1 (an answer, no tool)
    divergence = next(d for d in result.divergences if {d.a, d.b} == {adder, guesser})
    t1 = divergence.table[(divergence.table.task_id == "t1") & (divergence.table.seed == 0)]
    assert bool(t1.diverged.iloc[0]) and int(t1.position.iloc[0]) == 0
    same = divergence.table[(divergence.table.task_id == "t0") & (divergence.table.seed == 0)]
    assert not bool(same.diverged.iloc[0])
    cli = subprocess.run([sys.executable, "-m", "shardscope", "compare", "--db", str(imported),
                          "-s", "toy", "-m", "alpha,mockllm/adder,mockllm/guesser",
                          "--no-clusters"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert "mockllm/guesser" in cli.stdout and "alpha" in cli.stdout


def _truncated(path: Path, tmp: Path) -> Path:
    data = path.read_bytes()
    out = tmp / "truncated.eval"
    out.write_bytes(data[: len(data) // 2])
    return out


def _future(path: Path, tmp: Path) -> Path:
    log = json.loads(path.read_text())
    log["version"] = 99
    out = tmp / "future.json"
    out.write_text(json.dumps(log))
    return out


def _empty_zip(path: Path, tmp: Path) -> Path:
    out = tmp / "empty.eval"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("README", "not a log")
    return out


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda logs, tmp: _truncated(logs["adder"], tmp), "truncated or damaged"),
    (lambda logs, tmp: _future(logs["guesser"], tmp), "version 99"),
    (lambda logs, tmp: _empty_zip(logs["adder"], tmp), "not a readable Inspect log"),
    (lambda logs, tmp: (tmp / "x.txt", (tmp / "x.txt").write_text("hello"))[0], "expected a .eval or .json"),
])
def test_bad_logs_are_one_line_errors_and_write_nothing(
        make: Any, fragment: str, inspect_logs: dict[str, Path], fixture_store: Path,
        tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    shutil.copy(fixture_store, db)
    before = rows(db, "SELECT count(*) FROM spans")
    bad = make(inspect_logs, tmp_path)
    # a good log beside it: the import stops before writing either
    done = _import(db, inspect_logs["adder"], bad)
    assert done.returncode == 1
    assert fragment in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert rows(db, "SELECT count(*) FROM spans") == before
