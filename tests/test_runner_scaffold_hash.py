"""A scaffold whose code changed since its episodes were stored: `shardscope run --resume`
refuses to re-run them silently (or keeps them when told to), and `ablate` says why it does
not reuse their baselines. Real stores, scripted models; the "old code" is the scaffold with
one prompt edited (prompts are part of the hash, like its code)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shardscope.commands import run as run_cli
from shardscope.config.errors import ConfigError
from shardscope.config.settings import Settings
from shardscope.scaffolds.agents.react_tools import ToolCallingReAct
from shardscope.scaffolds.agents.registry import get_scaffold
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests import fakes

ROOT = Path(__file__).resolve().parents[1]
# One episode at a time, so "the second answer" is the second episode's.
SPEC = MatrixSpec(suites=("toy",), models=("toy-a",), scaffolds=("react-tools",),
                  concurrency={"scripted": 1})


def policy(exit_at_answer: int | None = None) -> Callable[..., Scripted]:
    """2 + 3 with the add tool; the ``exit_at_answer``-th answering call raises SystemExit
    (as SIGTERM does), so the run stops with the episodes before it stored."""
    answers = 0

    def answer(messages, tools, config):
        nonlocal answers
        if len(messages) <= 2:
            return Scripted(tool_calls=(ToolCall("c", "add", {"a": 2, "b": 3}),))
        answers += 1
        if answers == exit_at_answer:
            raise SystemExit(143)
        return Scripted(text="Final Answer: 5")

    return answer


def execute(monkeypatch: pytest.MonkeyPatch, db: Path, spec: MatrixSpec | None, *,
            exit_at_answer: int | None = None, **options) -> int:
    """``shardscope run`` / ``ablate`` in process, on the toy suite (2 tasks) and a scripted model."""
    def resources(settings, tracing, logprobs=False):
        model = TracedModel(ScriptedBackend(model="toy-a", policy=policy(exit_at_answer)), tracing,
                            model_id="toy-a")
        return fakes.resources({"toy-a": model}, tasks=2)

    monkeypatch.setattr(run_cli, "default_resources", resources)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        return run_cli.execute(spec, Settings(db=db, flush_interval=0.1), progress=False, **options)
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def older_scaffold_code(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """react-tools as it was before an edit; yields that version's hash."""
    with monkeypatch.context() as patch:
        prompts = dict(ToolCallingReAct.prompts, system=ToolCallingReAct.prompts["system"] + " Be brief.")
        patch.setattr(ToolCallingReAct, "prompts", prompts)
        yield get_scaffold("react-tools").identity


def episodes(db: Path) -> object:
    return read_frame(Store(db), "SELECT run_id, task_id, scaffold_hash, ablation_shard, outcome "
                                 "FROM episodes ORDER BY started_at")


def test_resume_refuses_to_rerun_episodes_of_changed_scaffold_code(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with older_scaffold_code(monkeypatch) as old:
        assert execute(monkeypatch, db_path, SPEC, exit_at_answer=2) == 143  # t0 stored, t1 not
    current = get_scaffold("react-tools").identity
    assert old != current
    before = episodes(db_path)
    run_id = before.run_id[0]
    assert list(before.task_id) == ["t0"] and list(before.scaffold_hash) == [old]

    with pytest.raises(ConfigError) as refused:
        execute(monkeypatch, db_path, None, resume_run=run_id)
    assert str(refused.value) == (
        f"run {run_id} was stored with other scaffold code: react-tools hash {old[:12]} stored "
        f"(1 episode), {current[:12]} now. The scaffold's code changed since, so --resume would "
        "run those episodes again rather than skip them. Start a new run with the current code, or "
        f"run `shardscope run --resume {run_id} --accept-changed-scaffolds` to keep the stored "
        "episodes and run only the missing ones (the run then holds two versions of the scaffold)")
    assert len(episodes(db_path)) == 1  # nothing ran

    capsys.readouterr()
    assert execute(monkeypatch, db_path, None, resume_run=run_id, accept_changed_scaffolds=True) == 0
    out = capsys.readouterr()
    assert (f"note: keeping 1 episode of react-tools stored under scaffold hash {old[:12]} as done "
            f"(the current code hashes to {current[:12]}); the missing ones run with the current code"
            ) in out.err
    assert "1 episodes run, 1 already done, 2 planned" in out.out
    after = episodes(db_path)
    assert list(zip(after.task_id, after.scaffold_hash, strict=True)) == [("t0", old), ("t1", current)]
    assert set(after.run_id) == {run_id}

    # Resumed once with the flag, the run still holds the old version: a plain --resume says so.
    with pytest.raises(ConfigError, match=f"react-tools hash {old[:12]} stored"):
        execute(monkeypatch, db_path, None, resume_run=run_id)


def test_resume_of_unchanged_code_says_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert execute(monkeypatch, db_path, SPEC, exit_at_answer=2) == 143
    run_id = episodes(db_path).run_id[0]
    assert execute(monkeypatch, db_path, None, resume_run=run_id) == 0
    out = capsys.readouterr()
    assert "note:" not in out.err and "1 episodes run, 1 already done, 2 planned" in out.out


def test_the_cli_prints_the_refusal_on_one_line(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with older_scaffold_code(monkeypatch) as old:
        assert execute(monkeypatch, db_path, SPEC) == 0
    current = get_scaffold("react-tools").identity
    out = subprocess.run([sys.executable, "-m", "shardscope", "run", "--resume", "latest", "--db",
                          str(db_path), "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: run ") and f"react-tools hash {old[:12]} stored (2 episodes), " \
        f"{current[:12]} now" in line and "--accept-changed-scaffolds" in line
    flag_alone = subprocess.run([sys.executable, "-m", "shardscope", "run", "--accept-changed-scaffolds",
                                 "--db", str(db_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert flag_alone.returncode == 1
    assert flag_alone.stderr.strip() == "error: --accept-changed-scaffolds only applies with --resume"


def test_ablate_says_why_baselines_of_changed_scaffold_code_are_not_reused(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ablate = MatrixSpec(suites=SPEC.suites, models=SPEC.models, scaffolds=SPEC.scaffolds,
                        ablations="removed", reuse_baselines=True, name="ablate")
    with older_scaffold_code(monkeypatch) as old:
        assert execute(monkeypatch, db_path, SPEC) == 0  # two baselines under the old code
    current = get_scaffold("react-tools").identity
    capsys.readouterr()

    assert execute(monkeypatch, db_path, ablate) == 0
    out = capsys.readouterr()
    assert (f"note: 2 stored baselines of react-tools (scaffold hash {old[:12]}) are not reused: "
            f"the scaffold's code changed since (it hashes to {current[:12]} now), and an ablation is "
            "only compared with a baseline of the same code, so they run again") in out.err
    assert "baselines reused" not in out.out
    second_run = episodes(db_path)[lambda e: e.run_id != e.run_id[0]]
    assert len(second_run) == 6 and set(second_run.scaffold_hash) == {current}  # 2 baselines + 4 ablations
    assert second_run.ablation_shard.isna().sum() == 2

    # Now baselines of the current code are stored: they are reused, and there is no note.
    assert execute(monkeypatch, db_path, ablate) == 0
    out = capsys.readouterr()
    assert "note:" not in out.err and "2 baselines reused from the store" in out.out
