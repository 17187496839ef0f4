"""`shardscope attribute` writes each episode as it goes: a run stopped after its first episode
(SIGTERM, then SIGKILL) keeps the episodes it finished, and the same command run again
completes the rest, skipping what is recorded, with no duplicate rows and the values of an
uninterrupted run. Real SmolLM2 (llama.cpp), real DuckDB store; the test waits on rows in the
store, never on time."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests.helpers.wait import wait_until
from tests.test_cli_attribute import cli

ROOT = Path(__file__).resolve().parents[1]
KEY = ["episode_id", "span_id", "shard", "mode"]
VALUES = ["status", "occurrences", "output_tokens", "base_logp", "ablated_logp", "delta_logp",
          "base_action_logp", "ablated_action_logp", "delta_action_logp"]
ATTRIBUTE = ("attribute", "--mode", "removed")


def stored(db: Path) -> pd.DataFrame:
    store = Store(db)
    exists = read_frame(store, "SELECT count(*) AS n FROM duckdb_tables() "
                               "WHERE table_name = 'attributions'")
    if not int(exists.n.iloc[0]):
        return pd.DataFrame(columns=[*KEY, *VALUES])
    return read_frame(store, f"SELECT {', '.join(KEY + VALUES)} FROM attributions")


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
    env.update(SHARDSCOPE_CONFIG=str(cwd / "config.toml"), SHARDSCOPE_STRICT_TRACING="1",
               PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "shardscope", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_after_new_episode(proc: subprocess.Popen[str], db: Path, before: int,
                           sig: signal.Signals) -> tuple[str, str]:
    """Wait until the store holds rows of more than ``before`` episodes, then send ``sig``
    while the command is still running (the point of the test); its (stdout, stderr)."""
    def new_episode() -> bool:
        assert proc.poll() is None, f"attribute ended before writing an episode: {proc.communicate()}"
        return bool(stored(db).episode_id.nunique() > before)

    wait_until(new_episode, "rows of a new episode in the store", timeout=900)
    assert proc.poll() is None, "attribute finished before it could be stopped"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return out, err


def whole_episodes(rows: pd.DataFrame, per_episode: pd.Series) -> bool:
    """Every episode in ``rows`` has all the rows an uninterrupted run wrote for it (compared
    by episode id, whatever order the two frames list them in)."""
    sizes = rows.groupby("episode_id").size()
    return bool((sizes == per_episode[sizes.index]).all())


@pytest.mark.llm
@pytest.mark.slow
def test_a_killed_attribute_resumes_without_duplicates(tmp_path: Path, smollm2_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    ran = cli(tmp_path, "run", "--db", str(db), "-s", "arithmetic", "-m", "smollm2-135m-instruct",
              "-a", "react-tools", "--tasks", "arith-00[1-5]", "-p", "react-tools.max_steps=2",
              "-p", "react-tools.max_tokens_per_call=24", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    whole = tmp_path / "whole"
    whole.mkdir()
    shutil.copy(db, whole / "s.duckdb")
    done = cli(whole, *ATTRIBUTE, "--db", str(whole / "s.duckdb"))
    assert done.returncode == 0, done.stderr
    reference = stored(whole / "s.duckdb")
    episodes = reference.episode_id.nunique()
    assert episodes == 5 and not reference.duplicated(KEY).any()
    per_episode = reference.groupby("episode_id").size()

    # SIGTERM after the first episode: a clean stop, the finished episodes kept whole.
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    _, err = stop_after_new_episode(start(tmp_path, *ATTRIBUTE, "--db", str(db)), db, 0,
                                      signal.SIGTERM)
    assert "Traceback" not in err and "run the same command again to resume" in err, err
    first = stored(db)
    kept = first.episode_id.nunique()
    assert 1 <= kept < episodes
    assert whole_episodes(first, per_episode)

    # SIGKILL after one more: nothing runs on the way out, the committed episodes stay.
    stop_after_new_episode(start(tmp_path, *ATTRIBUTE, "--db", str(db)), db, kept, signal.SIGKILL)
    second = stored(db)
    assert kept < second.episode_id.nunique() < episodes and not second.duplicated(KEY).any()
    assert whole_episodes(second, per_episode)

    resumed = cli(tmp_path, *ATTRIBUTE, "--db", str(db))
    assert resumed.returncode == 0, resumed.stderr
    text = " ".join(resumed.stdout.split())
    assert f"{len(reference) - len(second)} rows written, {len(second)} skipped as already recorded" in text
    assert f"{len(reference)} rows in the store's `attributions` table for this selection" in text
    assert f"({len(second)} rows skipped as already recorded)" in text
    progress = re.findall(r"\[\d+/5\] .*: (\d+) rows written, (\d+) skipped as already recorded",
                          resumed.stderr)
    assert len(progress) == episodes  # one line per episode, with what it skipped
    assert sum(int(s) for _, s in progress) == len(second)
    assert sum(int(w) for w, _ in progress) == len(reference) - len(second)
    final = stored(db)
    assert not final.duplicated(KEY).any()
    mine = final.set_index(KEY).sort_index()
    theirs = reference.set_index(KEY).sort_index()
    assert mine.index.equals(theirs.index)
    assert (mine.status == theirs.status).all() and (mine.output_tokens == theirs.output_tokens).all()
    numbers = ["base_logp", "ablated_logp", "delta_logp", "base_action_logp",
               "ablated_action_logp", "delta_action_logp"]
    # Equal (0.0 apart when measured); the tolerance allows llama.cpp a cached prefix evaluated
    # in other batches than a fresh one.
    pd.testing.assert_frame_equal(mine[numbers], theirs[numbers], check_exact=False, atol=1e-6,
                                  rtol=0)

    again = cli(tmp_path, *ATTRIBUTE, "--db", str(db))
    assert again.returncode == 0 and "0 rows written" in " ".join(again.stdout.split())
    assert len(stored(db)) == len(reference)
