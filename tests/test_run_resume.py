"""`run --resume --retry-errors` and concurrent resumes, through the real CLI into a real
store, with the real openai client against a loopback OpenAI-compatible server (issue 16:
the "Late" bullet of finding 9, and finding 7).

The server answers by task: in the first run the task about Alda gets HTTP 500 on every
attempt and the one about Bram answers after the call timeout (infrastructure errors: both
episodes end `error` after the retries), the other two get a wrong answer (model failures).
Then the server answers every task right, at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests.helpers.wait import wait_until
from tests.servers.fake_provider import FakeProvider, Recorded, Reply, ok, slow, status

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = {"Alda": "12", "Bram": "75", "coins": "24", "Edda": "34"}  # arith-001 .. 004
BROKEN = ("Alda", "Bram")  # a 500 / a call timeout on every attempt in the first run
TASK_OF = {"Alda": "arith-001", "Bram": "arith-002", "coins": "arith-003", "Edda": "arith-004"}
RUN = ("run", "-s", "arithmetic", "-m", "fake", "-a", "react-tools", "--limit", "4",
       "--no-progress")
RESUME = ("run", "--resume", "latest", "--retry-errors", "--no-progress")


@dataclass
class ByTask(FakeProvider):
    """Replies chosen by the task the request is about; ``healed`` ends the 500s, ``gate``
    (when set) holds every answer until the test opens it."""

    healed: bool = False
    gate: threading.Event | None = None

    def __post_init__(self) -> None:
        self.asked: list[str] = []
        super().__post_init__()

    def next_reply(self, recorded: Recorded) -> Reply:
        text = json.dumps(recorded.body.get("messages", []))
        word = next(w for w in ANSWERS if w in text)
        with self._lock:
            self.requests.append(recorded)
            self.asked.append(word)
        if not self.healed:
            if word == "Alda":
                return status(500, "the server is down")
            return slow(5.0, text=ANSWERS[word]) if word == "Bram" else ok("7")
        return ok(ANSWERS[word], gate=self.gate)


@pytest.fixture
def provider() -> Iterator[ByTask]:
    server = ByTask()
    try:
        yield server
    finally:
        if server.gate is not None:
            server.gate.set()
        server.close()


def _env(tmp_path: Path, provider: ByTask) -> dict[str, str]:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[models.fake]\nbackend = "openai-compatible"\nmodel = "fake"\n'
                       f'base_url = "{provider.base_url}/v1"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")
           or k == "SHARDSCOPE_STRICT_TRACING"}
    env.update(SHARDSCOPE_MODELS_FILE=str(catalog), SHARDSCOPE_DB=str(tmp_path / "s.duckdb"),
               SHARDSCOPE_CALL_TIMEOUT="1", SHARDSCOPE_CALL_TIMEOUT_PER_TOKEN="0.001",
               COLUMNS="200")
    return env


def _start(env: dict[str, str], args: tuple[str, ...]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shardscope", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = _start(env, args)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _episodes(db: Path) -> list[tuple[str, str]]:
    rows = read_frame(Store(db), "SELECT task_id, outcome, episode_key FROM episodes ORDER BY 1")
    assert rows.episode_key.is_unique, rows  # no task twice
    return list(zip(rows.task_id, rows.outcome, strict=True))


def _first_run(tmp_path: Path, provider: ByTask) -> dict[str, str]:
    env = _env(tmp_path, provider)
    code, err = _cli(env, *RUN)
    assert code == 0, err
    assert _episodes(tmp_path / "s.duckdb") == [
        ("arith-001", "error"), ("arith-002", "error"),
        ("arith-003", "failure"), ("arith-004", "failure")]
    assert "2 episodes of run" in err and "--retry-errors` runs them again" in err
    return env


def test_retry_errors_reruns_infrastructure_errors_only(tmp_path: Path, provider: ByTask) -> None:
    env = _first_run(tmp_path, provider)
    provider.healed = True
    provider.asked.clear()
    code, err = _cli(env, *RESUME)
    assert code == 0, err
    assert "running again 2 episodes that ended in infrastructure errors" in err
    assert set(provider.asked) == set(BROKEN)  # the model failures were not asked again
    assert _episodes(tmp_path / "s.duckdb") == [
        ("arith-001", "success"), ("arith-002", "success"),
        ("arith-003", "failure"), ("arith-004", "failure")]
    # the errored attempts stay stored, out of the views
    kept = read_frame(Store(tmp_path / "s.duckdb"),
                      "SELECT count(*) AS n FROM spans WHERE span_type = 'episode' "
                      "AND attributes->>'$.\"shardscope.episode.outcome\"' = 'error'")
    assert kept.n[0] == 2
    provider.asked.clear()
    code, err = _cli(env, *RESUME)  # nothing left to retry: nothing runs
    assert code == 0 and provider.asked == [], err
    assert len(_episodes(tmp_path / "s.duckdb")) == 4


def test_two_resumes_at_once_run_each_task_once(tmp_path: Path, provider: ByTask) -> None:
    env = _first_run(tmp_path, provider)
    provider.gate = threading.Event()
    provider.healed = True
    provider.asked.clear()
    both = [_start(env, RESUME), _start(env, RESUME)]
    try:
        # the one that gets the run waits at the server's gate; the other is refused at once.
        # Without the lock both run: more than the two retried tasks reach the server.
        wait_until(lambda: any(p.poll() is not None for p in both) or len(provider.asked) > 2,
                   timeout=240, what="one of the two resumes to exit")
        assert len(provider.asked) <= 2, f"both resumes ran the retried tasks: {provider.asked}"
        loser = next(p for p in both if p.poll() is not None)
        _, refusal = loser.communicate(timeout=10)
    finally:
        provider.gate.set()
    (winner,) = [p for p in both if p is not loser]
    _, err = winner.communicate(timeout=300)
    assert winner.returncode == 0, err
    assert loser.returncode == 1 and len(refusal.strip().splitlines()) == 1, refusal
    assert re.search(rf"already being run by pid {winner.pid} on host \S+", refusal), refusal
    assert _episodes(tmp_path / "s.duckdb") == [
        ("arith-001", "success"), ("arith-002", "success"),
        ("arith-003", "failure"), ("arith-004", "failure")]
    assert sorted(provider.asked) == sorted(BROKEN)  # each retried task asked once



def test_a_fresh_run_holds_its_lock_against_a_resume(tmp_path: Path, provider: ByTask) -> None:
    from shardscope.tracer.queries.runs import run_info

    env = _env(tmp_path, provider)
    provider.healed, provider.gate = True, threading.Event()
    store = Store(tmp_path / "s.duckdb")
    fresh = _start(env, RUN)
    try:  # the run is stored and waits at the gate: its lock is held
        wait_until(lambda: provider.asked and store.exists() and run_info(store), timeout=240,
                   what="the fresh run to be stored and waiting on the server")
        code, refusal = _cli(env, "run", "--resume", "latest", "--no-progress")
    finally:
        provider.gate.set()
    _, err = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, err
    assert code == 1 and f"already being run by pid {fresh.pid} on host" in refusal, refusal
    assert len(_episodes(tmp_path / "s.duckdb")) == 4
    assert not list(tmp_path.glob("*.run-*.lock"))  # each lock file left with its holder
