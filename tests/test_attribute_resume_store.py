"""Resuming `shardscope attribute`. A SIGTERM that lands while it writes an episode (here:
just after the write's COMMIT) stops the command cleanly after that write (exit 143), with that
episode kept, and the same command resumes the rest; rows scored on outputs cut by
--output-chars are scored again by a run over the whole outputs; a run of both modes after a
removed-only one scores only the replaced variants. Real runner and DuckDB store (scripted model); the
scorer is a stand-in with the scorer's interface (the real-model resume test is
tests/test_cli_attribute_resume.py), so the signal can be sent at an exact point."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shardscope.commands import attribute
from shardscope.config.settings import Settings
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx
from tests.test_attribution_locate import Counted
from tests.test_cli_attribute import scripted_store

MODEL = "smollm2-135m-instruct"


class StandInScorer:
    """-1 per output byte, +10 when the input still says "a is 2"."""

    def render_messages(self, messages: list[dict[str, Any]]) -> str:
        return "\n".join(p["content"] for m in messages for p in m["parts"] if "content" in p)

    def score_continuation(self, prompt: str, output: str) -> Counted:
        total = -float(len(output)) + (10.0 if "a is 2" in prompt else 0.0)
        return Counted(total, len(prompt), tuple([-1.0] * len(output.encode())))


class SignalAfterCommit:
    """The store, whose writer connections send SIGTERM to this process right after the
    first COMMIT returns: the handler then runs inside the write's transaction block."""

    def __init__(self, store: Store) -> None:
        self.store, self.sent = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextlib.contextmanager
    def writer(self) -> Iterator[Any]:
        with self.store.writer() as con:
            yield _Connection(con, self)


class _Connection:
    def __init__(self, con: Any, owner: SignalAfterCommit) -> None:
        self.con, self.owner = con, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def execute(self, sql: str, *args: Any) -> Any:
        result = self.con.execute(sql, *args)
        if sql == "COMMIT" and not self.owner.sent:
            self.owner.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return result


def _rows(db: Path) -> Any:
    return read_frame(Store(db), "SELECT episode_id, span_id, shard, mode FROM attributions")


def test_sigterm_during_a_write_stops_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.duckdb"
    scripted_store(db, MODEL)  # two toy episodes, two calls each
    settings = Settings(db=db, suites_dir=fx.dependence_suite(tmp_path / "suites"))
    monkeypatch.setattr(attribute, "scorer_for", lambda model, settings: StandInScorer())
    previous = signal.getsignal(signal.SIGTERM)

    stopped = attribute.attribute_command(
        SignalAfterCommit(Store(db)),
        settings,
        run_ids=(),  # type: ignore[arg-type]
        models=(),
        modes=("removed",),
    )
    assert stopped == 128 + signal.SIGTERM
    assert "terminated: every episode scored so far is in the store" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is previous
    first = _rows(db)
    assert first.episode_id.nunique() == 1 and len(first) == 2 * 2  # 2 calls x shards a, b

    assert (
        attribute.attribute_command(Store(db), settings, run_ids=(), models=(), modes=("removed",))
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    both = _rows(db)
    assert both.episode_id.nunique() == 2 and len(both) == 2 * len(first)
    assert not both.duplicated().any() and set(both.shard) == {"a", "b"}
    assert f"4 rows written, {len(first)} skipped as already recorded" in out


def _scored(db: Path) -> Any:
    return read_frame(
        Store(db),
        "SELECT span_id, shard, output_tokens, detail FROM attributions "
        "WHERE status = 'scored' ORDER BY span_id, shard",
    )


def test_a_run_over_whole_outputs_scores_cut_rows_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rows scored on outputs cut by --output-chars (the demo cuts at 160) measured a prefix:
    # a resumed run over the whole outputs must not keep them as if they were whole
    db = tmp_path / "s.duckdb"
    scripted_store(db, MODEL)  # the answer call's output is "Final Answer: 5" (15 bytes)
    settings = Settings(db=db, suites_dir=fx.dependence_suite(tmp_path / "suites"))
    monkeypatch.setattr(attribute, "scorer_for", lambda model, settings: StandInScorer())

    def run(limits: attribute.Limits) -> attribute.AttributionRun:
        return attribute.run_attribution(Store(db), settings, modes=("removed",), limits=limits)

    cut = run(attribute.Limits(output_chars=5))
    assert cut.written == 8 and cut.skipped == 0
    answers = _scored(db)
    answers = answers[answers.output_tokens > 0]
    assert len(answers) == 4 and (answers.output_tokens == 5).all()
    cut_details = answers.detail

    again = run(attribute.Limits(output_chars=5))  # the same cut: resumed, nothing to do
    assert (again.written, again.skipped, again.forward_passes) == (0, 8, 0)

    whole = run(attribute.Limits())
    assert (whole.written, whole.skipped) == (4, 4)  # the cut calls again; the empty ones kept
    answers = _scored(db)
    answers = answers[answers.output_tokens > 0]
    assert len(answers) == 4 and (answers.output_tokens == 15).all()
    assert (answers.detail.fillna("") == "").all()
    assert cut_details.str.contains("output cut to its first 5 characters").all()
    assert len(_rows(db)) == 8 and len(whole.rows) == 8
    # a cut run after the whole one keeps the whole rows (they measure more, at no cost)
    after = run(attribute.Limits(output_chars=5))
    assert (after.written, after.skipped) == (0, 8)


def test_a_run_of_both_modes_after_removed_scores_only_the_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the removed rows are recorded: the second run must not score them again (and then drop
    # them, calling them skipped); it costs what a replaced-only run costs
    suites = fx.dependence_suite(tmp_path / "suites")
    monkeypatch.setattr(attribute, "scorer_for", lambda model, settings: StandInScorer())

    def run(db: Path, *modes: str) -> attribute.AttributionRun:
        if not db.exists():
            scripted_store(db, MODEL)
        return attribute.run_attribution(Store(db), Settings(db=db, suites_dir=suites), modes=modes)

    replaced_only = run(tmp_path / "fresh.duckdb", "replaced")
    db = tmp_path / "resumed.duckdb"
    removed = run(db, "removed")
    both = run(db, "removed", "replaced")
    assert (both.written, both.skipped) == (replaced_only.written, removed.written) == (8, 8)
    assert both.forward_passes == replaced_only.forward_passes
    assert len(_rows(db)) == 16 and not _rows(db).duplicated().any()
