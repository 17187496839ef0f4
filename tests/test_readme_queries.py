"""Every SQL query in the README, run on a demo-like store (a demo run, then an ablation),
must answer something; and the per-call views carry their episode's context."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests.demo_fixtures import QWEN, SMOL

README = Path(__file__).parents[1] / "README.md"
CONTEXT_COLUMNS = ("suite", "task_id", "scaffold", "scaffold_hash", "seed", "ablation_shard",
                   "ablation_mode")


def _readme_queries() -> list[tuple[str, str]]:
    """(the comment above it, the query) for each query of the README's ```sql blocks."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    out = []
    for block in blocks:
        for chunk in re.split(r";[ \t]*(?:\n|$)", block):
            lines = chunk.strip().splitlines()
            comment = " ".join(line.lstrip("- ") for line in lines if line.startswith("--"))
            sql = "\n".join(line for line in lines if not line.startswith("--")).strip()
            if sql:
                out.append((comment, sql))
    return out


QUERIES = _readme_queries()


def test_the_readme_has_its_queries() -> None:
    assert len(QUERIES) >= 7


@pytest.mark.parametrize(("comment", "sql"), QUERIES, ids=[c[:40] for c, _ in QUERIES])
def test_every_readme_query_returns_rows(demo_store: Path, comment: str, sql: str) -> None:
    frame = read_frame(Store(demo_store), sql)
    assert len(frame) > 0, f"README query '{comment}' returned no rows"
    assert frame.notna().any(axis=None), f"README query '{comment}' returned only NULLs"


def test_disagreeing_tasks_query_finds_every_task_and_scaffold(demo_store: Path) -> None:
    sql = next(sql for comment, sql in QUERIES if "disagree" in comment)
    frame = read_frame(Store(demo_store), sql)
    # qwen succeeds on all 3 tasks under both scaffolds, smollm2 fails them all.
    assert len(frame) == 6 and set(frame.smollm2) == {"failure"} and set(frame.qwen) == {"success"}


def test_readme_tool_query_counts_baselines_once(demo_store: Path) -> None:
    """Issue 17: ablated episodes mixed into the README's tool query (64 calls, not 32)."""
    store = Store(demo_store)
    sql = next(sql for comment, sql in QUERIES if "which tools" in comment)
    calls = read_frame(store, sql).groupby("model").calls.sum().to_dict()
    expected = read_frame(store, "SELECT model, sum(tool_calls) n FROM episodes "
                                 "WHERE ablation_shard IS NULL GROUP BY model HAVING n > 0")
    assert calls == dict(zip(expected.model, expected.n, strict=True))


@pytest.mark.parametrize("view", ["steps", "llm_calls", "tool_calls", "messages", "token_events"])
def test_per_call_views_carry_the_episode_context(demo_store: Path, view: str) -> None:
    store = Store(demo_store)
    frame = read_frame(store, f"SELECT * FROM {view}")
    assert len(frame) > 0
    for column in (*CONTEXT_COLUMNS, "model", "run_id"):
        assert column in frame.columns, f"{view} has no {column}"
    episodes = read_frame(store, "SELECT episode_id, suite, task_id, scaffold, seed, ablation_shard "
                                 "FROM episodes")
    merged = frame.merge(episodes, on="episode_id", suffixes=("", "_episode"))
    assert len(merged) == len(frame)
    for column in ("suite", "task_id", "scaffold", "seed", "ablation_shard"):
        mine, theirs = merged[column], merged[f"{column}_episode"]
        assert ((mine == theirs) | (mine.isna() & theirs.isna())).all(), column
    assert frame.ablation_shard.notna().any() and frame.ablation_shard.isna().any()
    assert set(frame.model) <= {SMOL, QWEN}
    assert not pd.isna(frame.suite).any()
