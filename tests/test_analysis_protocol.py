"""Format vs substance: off-protocol final replies re-judged leniently by the task's own
check, and the per model x scaffold split of failure into protocol and answer."""

from __future__ import annotations

import math

import pandas as pd

from shardscope.analysis import protocol
from shardscope.scaffolds.tasks.model import Check

TRAIN = "The 09:15 train to Dunmere leaves from platform 3. The answer is: 3."
CHECKS = {"platform": Check("numeric", expected=3.0), "name": Check("exact", expected="Dunmere"),
          "tests": Check("tests_pass")}


def test_the_lenient_answer_is_what_follows_the_last_marker() -> None:
    assert protocol.lenient_answer(TRAIN) == "3"
    assert protocol.lenient_answer("Final Answer: Dunmere.") == "Dunmere"
    assert protocol.lenient_answer("Dunmere") == "Dunmere"
    assert protocol.lenient_answer("   ") is None and protocol.lenient_answer(None) is None


def _replies() -> pd.DataFrame:
    rows = [  # (model, scaffold, task, outcome, last reply)
        ("smol", "react-text", "platform", "protocol_error", TRAIN),
        ("smol", "react-text", "platform", "protocol_error", "It leaves from platform 4."),
        ("smol", "react-text", "name", "protocol_error", "The answer is: Dunmere"),
        ("smol", "react-text", "tests", "protocol_error", "def f(): ..."),
        ("smol", "react-text", "platform", "failure", "Final Answer: 5"),
        ("smol", "react-tools", "platform", "success", "Final Answer: 3"),
    ]
    return pd.DataFrame([{"model": m, "scaffold": a, "suite": "s", "task_id": t, "outcome": o,
                          "last_output": r} for m, a, t, o, r in rows])


def test_off_protocol_endings_split_into_protocol_and_answer_failures() -> None:
    judged = protocol.rejudge(_replies(), lambda suite, task: CHECKS.get(task))
    assert list(judged.lenient.fillna("-")) == ["right", "wrong", "right", "not_judged", "-", "-"]
    table = protocol.format_vs_substance(judged).set_index("scaffold")
    text = table.loc["react-text"]
    assert (text.episodes, text.failures, text.off_protocol) == (5, 5, 4)
    assert (text.protocol_only, text.answer_wrong, text.not_judged) == (2, 1, 1)
    assert text.protocol_share == 2 / 5
    tools = table.loc["react-tools"]
    assert tools.failures == 0 and math.isnan(tools.protocol_share)  # no failure to split


def test_a_task_without_a_known_check_is_not_judged() -> None:
    judged = protocol.rejudge(_replies().head(1), lambda suite, task: None)
    assert list(judged.lenient) == ["not_judged"]
