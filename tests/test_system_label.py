"""One "model · scaffold" label everywhere (stats.system_column): the estimates, the
likelihood rows and the follow rates name a system alike, an unrecorded scaffold as "?"."""

from __future__ import annotations

import pandas as pd

from shardscope.analysis import stats


def test_one_label_with_missing_parts_as_a_question_mark() -> None:
    frame = pd.DataFrame(
        {"model": ["m", "m", "n"], "scaffold": ["react-tools", None, float("nan")]}
    )
    assert stats.system_column(frame).tolist() == ["m · react-tools", "m · ?", "n · ?"]
    assert [stats.system_label(r) for _, r in frame.iterrows()] == stats.system_column(
        frame
    ).tolist()
    tasks = pd.DataFrame({"suite": ["s"], "task_id": ["t1"]})
    assert stats.system_column(tasks, stats.TASK_KEYS).tolist() == ["s · t1"]
    assert stats.system_column(frame.iloc[0:0]).empty
