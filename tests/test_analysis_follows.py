"""Follows the shard: answers under a replaced shard are classified by the task's own check
against the replacement's implied answer; rates split by the prior."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from shardscope.analysis import follows
from shardscope.scaffolds.tasks.loader import get_suite, load_suite
from shardscope.scaffolds.tasks.model import Check, Shard

CHECK = Check("numeric", expected=12)
SHARD = Shard("flock", "fact", "d", "Alda has 7 sheep.", replacement="Alda has 9 sheep.",
              implied_answer="14")


def _pairs() -> pd.DataFrame:
    rows = []
    for i, (answer, outcome, prior) in enumerate([("14", "failure", "failure"), ("The answer is 14.", "failure", "success"),
                                                  ("12", "success", "success"), ("3", "failure", "failure")]):
        key = f"b{i}"
        rows.append({"model": "m", "suite": "s", "task_id": "t", "shard": "flock", "mode": "replaced",
                     "final_answer": answer, "outcome": outcome, "baseline_episode_key": key})
        rows.append({"model": "m", "suite": "s", "task_id": "t", "shard": "flock", "mode": "removed",
                     "final_answer": "", "outcome": prior, "baseline_episode_key": key})
    return pd.DataFrame(rows)


def test_follow_keep_other_by_the_tasks_check() -> None:
    pairs = _pairs()
    classified = follows.classify(pairs, lambda *_: SHARD, lambda *_: CHECK)
    assert list(classified.follows) == ["follow", "follow", "keep", "other"]
    (row,) = follows.follow_rates(classified, pairs).itertuples()
    assert (row.follow, row.keep, row.other, row.follow_rate) == (2, 1, 1, 0.5)
    assert row.follow_rate_prior_right == 0.5 and row.follow_rate_prior_wrong == 0.5


def test_shards_without_implied_answer_are_not_counted() -> None:
    bare = Shard("flock", "fact", "d", "x", replacement="y")
    assert follows.classify(_pairs(), lambda *_: bare, lambda *_: CHECK).empty
    assert math.isnan(follows.follow_rates(
        follows.classify(_pairs(), lambda *_: SHARD, lambda *_: CHECK)).follow_rate_prior_right[0])


def test_the_loader_reads_implied_answer(tmp_path: Path) -> None:
    suite = get_suite("arithmetic")
    implied = [s for t in suite.tasks for s in t.shards if s.implied_answer is not None]
    assert implied, "the shipped arithmetic suite declares implied answers"
    text = (Path(suite.path)).read_text(encoding="utf-8")
    copy = tmp_path / "arithmetic.toml"
    copy.write_text(text, encoding="utf-8")
    again = load_suite(copy)
    assert [s.implied_answer for t in again.tasks for s in t.shards] == \
        [s.implied_answer for t in suite.tasks for s in t.shards]


def test_an_episode_without_a_final_answer_is_other() -> None:
    """A protocol error or exhausted budget leaves final_answer NULL (NaN in the frame)."""
    pairs = _pairs()
    pairs.loc[0, "final_answer"] = float("nan")
    classified = follows.classify(pairs, lambda *_: SHARD, lambda *_: CHECK)
    assert list(classified.follows) == ["other", "follow", "keep", "other"]
