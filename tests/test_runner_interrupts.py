"""Interrupted attempts: kept in `spans`, marked abandoned, left out of the views; Ctrl-C,
SystemExit (SIGTERM) and SIGKILL; stale runs; what `shardscope run --resume` accepts."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.errors import ServerError
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import DEFAULT_CONCURRENCY, Runner, mark_abandoned
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.queries.runs import completed_episode_keys, orphan_episode_ids
from shardscope.tracer.schema import STALE_AFTER_S
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.sinks import DuckDBSink
from shardscope.tracer.store import Store
from tests import fakes
from tests.helpers.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
SPEC = MatrixSpec(suites=("toy",), models=("toy-a", "toy-b"), scaffolds=("react-tools",), seeds=2)
# Every view with one row per span (or span event) of an attempt.
ATTEMPT_VIEWS = ("steps", "llm_calls", "tool_calls", "messages", "token_events", "llm_attempts")


async def _nosleep(_: float) -> None:
    return None


HANG_UNTIL_CANCELLED = 3600.0  # a call that only cancellation ends, however slow the machine


def toy_policy(hang_s: float = 0.0, raise_at_answer: BaseException | None = None):
    """2 + 3 with the add tool; the answering call hangs ``hang_s`` or raises (once)."""
    pending = [raise_at_answer] if raise_at_answer is not None else []

    def answer(messages, tools, config):
        if len(messages) <= 2:
            return Scripted(tool_calls=(ToolCall("c", "add", {"a": 2, "b": 3}),))
        if pending:
            raise pending.pop()
        return Scripted(text="Final Answer: 5", delay_s=hang_s)

    return answer


def make_runner(db: Path, b_policy, first_b_fails: bool = False):
    tracing = setup_tracing(Settings(db=db, flush_interval=0.1), strict=True)
    fails = [ServerError("busy", status_code=503)] if first_b_fails else []
    backends = {
        "toy-a": ScriptedBackend(model="toy-a", policy=toy_policy()),
        "toy-b": ScriptedBackend(model="toy-b", policy=b_policy, responses=fails),
    }
    models = {n: TracedModel(b, tracing, model_id=n, sleep=_nosleep) for n, b in backends.items()}
    return tracing, Runner(tracing, fakes.resources(models, tasks=3), progress=False), backends


def ghost_rows(store: Store) -> dict[str, int]:
    """Rows of the attempt views whose episode id is not in `episodes`, per view."""
    return {
        view: int(read_frame(store, f"SELECT count(*) AS n FROM {view} WHERE episode_id NOT IN "
                                    "(SELECT episode_id FROM episodes)").n[0])
        for view in ATTEMPT_VIEWS
    }


def markers(store: Store) -> dict[str, str]:
    """episode id -> reason of every abandoned_episode marker."""
    rows = read_frame(store, "SELECT episode_id, attributes->>'$.\"shardscope.episode."
                             "abandoned_reason\"' AS reason FROM spans "
                             "WHERE span_type = 'abandoned_episode'")
    return dict(zip(rows.episode_id, rows.reason, strict=True))


def raw_unfinished(store: Store) -> dict[str, int]:
    """episode id -> raw spans stored for it, for ids that have no episode span."""
    rows = read_frame(store, "SELECT episode_id, count(*) AS n FROM spans "
                             "WHERE episode_id IS NOT NULL "
                             "AND span_type NOT IN ('episode', 'abandoned_episode') "
                             "AND episode_id NOT IN (SELECT episode_id FROM spans "
                             "WHERE span_type = 'episode') GROUP BY ALL")
    return dict(zip(rows.episode_id, rows.n, strict=True))


def resume_in_process(db: Path, run_id: str) -> None:
    store = Store(db)
    tracing, runner, _ = make_runner(db, toy_policy())
    asyncio.run(runner.run(SPEC, run_id=run_id, done_keys=completed_episode_keys(store, run_id),
                           orphans=orphan_episode_ids(store, run_id)))
    tracing.shutdown()


def assert_complete_and_consistent(store: Store, run_id: str) -> None:
    """Every planned episode once; the views hold exactly the finished attempts' rows."""
    eps = read_frame(store, "SELECT * FROM episodes WHERE run_id = ?", [run_id])
    assert len(eps) == 12 and eps.episode_key.nunique() == 12 and set(eps.outcome) == {"success"}
    assert ghost_rows(store) == dict.fromkeys(ATTEMPT_VIEWS, 0)
    for view in ("steps", "llm_calls", "tool_calls"):
        rows = read_frame(store, f"SELECT count(*) AS n FROM {view} WHERE run_id = ?", [run_id])
        assert rows.n[0] == eps[view].sum(), view  # no attempt is counted twice
    run = read_frame(store, "SELECT status, completed_episodes FROM runs WHERE run_id = ?",
                     [run_id]).iloc[0]
    assert (run.status, run.completed_episodes) == ("finished", 12)


# --- Ctrl-C (cancellation) ------------------------------------------------------------------
def test_cancelled_attempts_are_kept_marked_and_left_out_of_the_views(db_path: Path) -> None:
    # toy-b's answering call hangs, so every toy-b attempt is cancelled after its first step
    # (a tool call, an LLM call with a failed attempt before it, streamed tokens) was stored.
    tracing, runner, backends = make_runner(db_path, toy_policy(hang_s=HANG_UNTIL_CANCELLED), first_b_fails=True)

    async def run_then_cancel():
        task = asyncio.create_task(runner.run(SPEC))
        # toy-a done; each toy-b attempt made its two calls (one retried) and hangs in the 2nd
        while runner.last_report is None or runner.last_report.ran < 6 \
                or len(backends["toy-b"].calls) < 13:
            await asyncio.sleep(0.01)
        task.cancel()
        return await task

    first = asyncio.run(run_then_cancel())
    tracing.shutdown()
    store = Store(db_path)
    assert first.interrupted and first.ran == 6
    unfinished = raw_unfinished(store)
    assert len(unfinished) == 6 and min(unfinished.values()) >= 3  # nothing was deleted
    assert markers(store) == dict.fromkeys(unfinished, A.AbandonReason.CANCELLED)
    assert read_frame(store, "SELECT count(*) AS n FROM span_events WHERE name = ?",
                      [A.EVENT_ATTEMPT_FAILED]).n[0] == 1
    assert ghost_rows(store) == dict.fromkeys(ATTEMPT_VIEWS, 0)
    assert len(read_frame(store, "SELECT * FROM llm_attempts")) == 0  # its attempt was abandoned
    assert set(read_frame(store, "SELECT DISTINCT model FROM steps").model) == {"toy-a"}
    assert orphan_episode_ids(store, first.run_id) == []  # all marked already

    resume_in_process(db_path, first.run_id)
    assert_complete_and_consistent(store, first.run_id)
    assert len(raw_unfinished(store)) == 6  # the abandoned attempts' spans are still there


def test_a_marker_never_hides_an_attempt_that_finished(db_path: Path) -> None:
    tracing, runner, _ = make_runner(db_path, toy_policy())
    spec = MatrixSpec(suites=("toy",), models=("toy-a",), scaffolds=("react-tools",))
    report = asyncio.run(runner.run(spec))
    store = Store(db_path)
    tracing.force_flush()
    finished = read_frame(store, "SELECT episode_id FROM episodes").episode_id.tolist()
    with tracing.inherit({A.RUN_ID: report.run_id}):
        mark_abandoned(tracing, finished[0], A.AbandonReason.ORPHANED)
    tracing.shutdown()
    steps = read_frame(store, "SELECT count(*) AS n FROM steps WHERE episode_id = ?", [finished[0]])
    assert steps.n[0] == 2


def test_a_running_attempt_stays_visible(db_path: Path) -> None:
    # The UI watches live runs: steps of an episode still in progress are in the views.
    tracing, runner, backends = make_runner(db_path, toy_policy(hang_s=HANG_UNTIL_CANCELLED))
    spec = MatrixSpec(suites=("toy",), models=("toy-b",), scaffolds=("react-tools",))

    async def look_while_running():
        task = asyncio.create_task(runner.run(spec))
        while len(backends["toy-b"].calls) < 3 * 2:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(tracing.force_flush)
        live = await asyncio.to_thread(read_frame, Store(db_path),
                                       "SELECT count(*) AS n FROM steps")
        task.cancel()
        await task
        return int(live.n[0])

    assert asyncio.run(look_while_running()) == 3  # the first step of each of the 3 tasks
    tracing.shutdown()
    assert ghost_rows(Store(db_path))["steps"] == 0 and len(markers(Store(db_path))) == 3


# --- SystemExit / KeyboardInterrupt inside an episode -------------------------------------------
@pytest.mark.parametrize("exc", [SystemExit(143), KeyboardInterrupt()],
                         ids=["SystemExit", "KeyboardInterrupt"])
def test_exit_inside_an_episode_abandons_it_and_interrupts_the_run(
    db_path: Path, exc: BaseException
) -> None:
    # What SIGTERM (tracer.setup turns it into SystemExit) does when it lands mid-episode.
    tracing, runner, _ = make_runner(db_path, toy_policy(hang_s=0.05, raise_at_answer=exc))
    with pytest.raises(type(exc)):
        asyncio.run(runner.run(SPEC))
    tracing.shutdown()
    store = Store(db_path)
    run = read_frame(store, "SELECT run_id, status FROM runs").iloc[0]
    assert run.status == "interrupted"
    assert runner.last_report is not None and runner.last_report.interrupted
    errors = read_frame(store, "SELECT count(*) AS n FROM episodes WHERE outcome <> 'success'").n[0]
    assert errors == 0  # the interrupted attempt is not an (error) episode --resume would skip
    reasons = markers(store)
    assert list(reasons.values()).count(A.AbandonReason.INTERRUPTED) == 1
    assert set(reasons) == set(raw_unfinished(store))
    assert ghost_rows(store) == dict.fromkeys(ATTEMPT_VIEWS, 0)

    resume_in_process(db_path, run.run_id)
    assert_complete_and_consistent(store, run.run_id)


def test_execute_turns_system_exit_into_an_interrupted_run_and_its_exit_code(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shardscope.commands import run as run_cli

    def resources(settings, tracing, logprobs=False):
        policy = toy_policy(raise_at_answer=SystemExit(143))
        models = {n: TracedModel(ScriptedBackend(model=n, policy=policy), tracing, model_id=n)
                  for n in ("toy-a", "toy-b")}
        return fakes.resources(models, tasks=3)

    monkeypatch.setattr(run_cli, "default_resources", resources)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = run_cli.execute(SPEC, Settings(db=db_path, flush_interval=0.1), progress=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143
    assert "interrupted" in capsys.readouterr().out
    assert read_frame(Store(db_path), "SELECT status FROM runs").status[0] == "interrupted"


# --- real processes: SIGTERM, SIGKILL -----------------------------------------------------------
def toy_cmd(db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.helpers.toy_run", "--db", str(db), "--tasks", "6", *extra]


def start_and_signal(db: Path, sig: int, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(toy_cmd(db, *extra), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    announced = [proc.stdout.readline() for _ in range(5)]
    if not all(line.startswith("episode ") for line in announced):
        proc.kill()
        pytest.fail(proc.communicate(timeout=30)[1])
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(announced) + out, err)


def resume_toy(db: Path) -> dict[str, int]:
    resumed = subprocess.run([*toy_cmd(db), "--resume"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    found = re.search(r"ran=(\d+) skipped=(\d+) orphans=(\d+)", resumed.stdout)
    assert found, resumed.stdout
    return dict(zip(("ran", "skipped", "orphans"), map(int, found.groups()), strict=True))


def assert_all_24_once(store: Store, run_id: str) -> None:
    rows = read_frame(store, "SELECT episode_key, steps FROM episodes WHERE run_id = ?", [run_id])
    assert len(rows) == 24 and rows.episode_key.nunique() == 24
    assert ghost_rows(store) == dict.fromkeys(ATTEMPT_VIEWS, 0)
    assert read_frame(store, "SELECT count(*) AS n FROM steps").n[0] == rows.steps.sum()


@pytest.mark.slow
@pytest.mark.parametrize("busy", [False, True], ids=["awaiting", "computing"])
def test_sigterm_interrupts_the_run_and_abandons_in_flight_attempts(
    db_path: Path, busy: bool
) -> None:
    # "computing": the scripted model spends its delay in Python on the main thread, so the
    # signal's SystemExit mostly lands inside an episode rather than in the event loop.
    done = start_and_signal(db_path, signal.SIGTERM, *(["--busy"] if busy else []))
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    store = Store(db_path)
    run = read_frame(store, "SELECT run_id, status FROM runs").iloc[0]
    assert run.status == "interrupted"
    announced = {ln.split()[1] for ln in done.stdout.splitlines() if ln.startswith("episode ")}
    survived = completed_episode_keys(store, run.run_id)
    assert announced <= survived
    outcomes = read_frame(store, "SELECT outcome, error FROM episodes")
    # No episode ended as an "error" by SystemExit (one --resume would skip).
    assert set(outcomes.outcome) == {"success"}, outcomes.error.tolist()
    assert markers(store) and set(markers(store)) <= set(raw_unfinished(store))
    assert ghost_rows(store) == dict.fromkeys(ATTEMPT_VIEWS, 0)

    resumed = resume_toy(db_path)
    assert (resumed["skipped"], resumed["ran"]) == (len(survived), 24 - len(survived))
    assert_all_24_once(store, run.run_id)


@pytest.mark.slow
def test_sigkilled_run_is_stale_and_resume_marks_its_orphans(db_path: Path) -> None:
    done = start_and_signal(db_path, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    store = Store(db_path)
    run_id = read_frame(store, "SELECT run_id FROM runs").run_id[0]
    orphans = orphan_episode_ids(store, run_id)
    assert set(orphans) == set(raw_unfinished(store)) and not markers(store)
    assert orphans  # the in-flight attempts' first steps were flushed with the announced episodes
    assert ghost_rows(store)["steps"] > 0  # no marker could be written: they show until --resume
    assert read_frame(store, "SELECT status FROM runs").status[0] == "running"  # just killed
    backdate_writers(store, STALE_AFTER_S + 5)
    assert read_frame(store, "SELECT status FROM runs").status[0] == "stale"

    resumed = resume_toy(db_path)
    assert resumed["orphans"] == len(orphans)
    assert markers(store) == dict.fromkeys(orphans, A.AbandonReason.ORPHANED)
    assert_all_24_once(store, run_id)
    assert read_frame(store, "SELECT status FROM runs").status[0] == "finished"


# --- stale runs and the writer heartbeat --------------------------------------------------------
def backdate_writers(store: Store, seconds: float) -> None:
    with store.writer() as con:
        con.execute("UPDATE writer_stats SET recorded_at = recorded_at - to_seconds(?)",
                    [int(seconds)])


def start_run(db: Path, run_id: str = "r1") -> None:
    """A run that started and never ended, written by a process that is now gone."""
    tracing = setup_tracing(Settings(db=db), strict=True)
    with tracing.inherit({A.RUN_ID: run_id}):
        with tracing.span("run start", SpanType.RUN_START, {A.RUN_PLANNED_EPISODES: 2}):
            pass
    tracing.shutdown()


def run_status(store: Store) -> str:
    return str(read_frame(store, "SELECT status FROM runs").status[0])


def test_unended_run_is_stale_once_its_writer_is_silent(db_path: Path) -> None:
    start_run(db_path)
    store = Store(db_path)
    assert run_status(store) == "running"
    backdate_writers(store, STALE_AFTER_S - 20)
    assert run_status(store) == "running"  # quiet, but within the threshold
    backdate_writers(store, 30)
    assert run_status(store) == "stale"
    heard = read_frame(store, "SELECT writer_heard_at FROM runs").writer_heard_at[0]
    assert heard is not None


def test_without_writer_stats_the_last_activity_decides(db_path: Path) -> None:
    start_run(db_path)
    store = Store(db_path)
    with store.writer() as con:
        con.execute("DELETE FROM writer_stats")
    assert run_status(store) == "running"
    with store.writer() as con:
        con.execute("UPDATE spans SET start_time = start_time - to_seconds(?)",
                    [STALE_AFTER_S + 5])
        # the runs view reads the typed rows derived at ingest (schema v3): backdate them too
        for table, column in (("typed_runs", "started_at"), ("typed_episodes", "ended_at")):
            con.execute(f"UPDATE {table} SET {column} = {column} - to_seconds(?)",
                        [STALE_AFTER_S + 5])
    assert run_status(store) == "stale"


def test_an_ended_run_is_never_stale(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with tracing.inherit({A.RUN_ID: "r1"}):
        with tracing.span("run start", SpanType.RUN_START):
            pass
        with tracing.span("run r1", SpanType.RUN, {A.RUN_STATUS: "interrupted"}):
            pass
    tracing.shutdown()
    store = Store(db_path)
    backdate_writers(store, STALE_AFTER_S * 10)
    assert run_status(store) == "interrupted"


def test_a_quiet_live_writer_heartbeats_and_its_run_stays_running(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DuckDBSink, "heartbeat_interval", 0.2)
    # Heartbeats are let through only once the test has seen the run stale (a beat landing
    # between the backdating and that look would make it "running" already).
    beating, beat = threading.Event(), DuckDBSink.heartbeat
    monkeypatch.setattr(DuckDBSink, "heartbeat",
                        lambda self, stats: beat(self, stats) if beating.is_set() else None)
    tracing = setup_tracing(Settings(db=db_path, flush_interval=0.1), strict=True)
    store = Store(db_path)
    try:
        with tracing.inherit({A.RUN_ID: "r1"}), tracing.span("run start", SpanType.RUN_START):
            pass
        tracing.force_flush()
        backdate_writers(store, STALE_AFTER_S + 5)  # as if a model call had been silent that long
        assert run_status(store) == "stale"
        beating.set()

        def recent_beats():
            beats = read_frame(store, "SELECT pid, spans_written, batches FROM writer_stats "
                                      "WHERE recorded_at > now() - INTERVAL 5 SECOND")
            return (beats,) if len(beats) >= 2 else None

        (beats,) = wait_until(recent_beats, "two heartbeats of the quiet writer")
        assert run_status(store) == "running"
        assert set(beats.pid) == {os.getpid()}
        assert set(beats.spans_written) == {1} and set(beats.batches) == {1}  # counters unchanged
    finally:
        tracing.shutdown()


def test_a_writer_that_wrote_nothing_creates_no_store_to_heartbeat(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DuckDBSink, "heartbeat_interval", 0.1)
    beats, beat = [], DuckDBSink.heartbeat

    def counted(self: DuckDBSink, stats) -> None:
        beat(self, stats)
        beats.append(db_path.exists())

    monkeypatch.setattr(DuckDBSink, "heartbeat", counted)
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    wait_until(lambda: len(beats) >= 3, "three heartbeats")
    tracing.shutdown()
    assert not db_path.exists() and not any(beats)


# --- `shardscope run`: --resume and --help ----------------------------------------------------
def shardscope(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400", "TERMINAL_WIDTH": "400"}  # help on one line per option
    return subprocess.run([sys.executable, "-m", "shardscope", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        (["--seeds", "3"], "--seeds"),
        (["--seeds", "1"], "--seeds"),  # the default value, given explicitly, is still refused
        (["--concurrency", "openai=2"], "--concurrency"),
        (["--logprobs"], "--logprobs"),
        (["--name", "again"], "--name"),
        (["-s", "arithmetic", "--seeds", "2", "--name", "x"], "--suite, --seeds, --name"),
    ],
)
def test_resume_refuses_matrix_options(db_path: Path, options: list[str], flags: str) -> None:
    out = shardscope("run", "--resume", "latest", "--db", str(db_path), *options)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: --resume takes the matrix from the stored run; drop {flags}"]


def test_resume_still_takes_its_own_options(db_path: Path) -> None:
    out = shardscope("run", "--resume", "latest", "--db", str(db_path), "--no-progress")
    assert out.returncode == 1 and "nothing to resume: no store at" in out.stderr


def test_run_help_names_suites_providers_and_ablation_modes() -> None:
    out = shardscope("run", "--help")
    assert out.returncode == 0, out.stderr
    lines = {line.split()[1]: line for line in out.stdout.splitlines() if line.startswith("│ --")}
    suites = sorted(p.stem for p in (ROOT / "config" / "suites").glob("*.toml"))
    assert suites and all(name in lines["--suite"] for name in suites), lines["--suite"]
    providers = [p for p in DEFAULT_CONCURRENCY if p != "scripted"] + ["openai", "anthropic"]
    assert all(p in lines["--concurrency"] for p in providers), lines["--concurrency"]
    modes = ("removed", "replaced", "both")
    assert all(mode in lines["--ablate"] for mode in modes), lines["--ablate"]


def test_resume_refuses_a_run_that_is_still_running(db_path: Path) -> None:
    # A run whose writer was heard just now (another process is on it): resuming would run
    # its missing tasks twice.
    spec = MatrixSpec(suites=("toy",), models=("toy-a",), scaffolds=("react-tools",))
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    with tracing.inherit({A.RUN_ID: "r-live"}), tracing.span("run start r-live", SpanType.RUN_START,
                      {A.RUN_CONFIG: spec.to_json(), A.RUN_PLANNED_EPISODES: 2}):
        pass
    tracing.shutdown()
    assert read_frame(Store(db_path), "SELECT status FROM runs").status[0] == "running"
    out = shardscope("run", "--resume", "latest", "--db", str(db_path), "--no-progress")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: run r-live is still running")
