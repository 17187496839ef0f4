"""Format vs substance: how much of a model's failure under a scaffold is the protocol (it
answered right, in a form the scaffold could not read) and how much is the answer.

The strict outcome stays what the scaffold judged. Beside it, every episode that ended off
protocol (``protocol_error``) has its last reply re-judged by the task's own check after a
lenient answer extraction: the text after the last "answer is" / "Answer:" / "Final
Answer", else the whole reply. A reply that passes is a *protocol* failure; one that fails
is an *answer* failure too. Checks that need more than a text (tests, tool calls) are not
re-judged (``not_judged``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd

from shardscope.scaffolds.tasks.checks import check_exact, check_numeric, check_regex
from shardscope.scaffolds.tasks.model import Check

_MARKER = re.compile(r"(?:final\s+answer|the\s+answer\s+is|answer)\s*[:=]?\s*", re.IGNORECASE)
TEXT_CHECKS = {"numeric": check_numeric, "exact": check_exact, "regex": check_regex}
COLUMNS = ["model", "scaffold", "episodes", "failures", "off_protocol", "protocol_only",
           "answer_wrong", "not_judged", "protocol_share"]
CheckLookup = Callable[[str, str], Check | None]  # (suite, task_id) -> the task's check


def lenient_answer(reply: str | None) -> str | None:
    """The answer a reader would take from ``reply``: after its last answer marker, else all."""
    if reply is None or not reply.strip():
        return None
    markers = list(_MARKER.finditer(reply))
    tail = reply[markers[-1].end():] if markers else reply
    return tail.strip().rstrip(".").strip() or reply.strip()


def rejudge(replies: pd.DataFrame, checks: CheckLookup) -> pd.DataFrame:
    """``replies`` (:func:`shardscope.tracer.queries.protocol.last_replies`) with
    ``lenient`` = right | wrong | not_judged for off-protocol episodes (NaN otherwise)."""
    labels: list[str | None] = []
    for r in replies.itertuples():
        if r.outcome != "protocol_error":
            labels.append(None)
            continue
        check = checks(r.suite, r.task_id)
        judge = TEXT_CHECKS.get(check.type) if check is not None else None
        answer = lenient_answer(r.last_output)
        if judge is None or check is None:
            labels.append("not_judged")
        elif answer is None:
            labels.append("wrong")
        else:
            labels.append("right" if judge(check, answer).outcome == "success" else "wrong")
    return replies.assign(lenient=labels)


def format_vs_substance(judged: pd.DataFrame) -> pd.DataFrame:
    """Per model x scaffold: episodes, failures (strict), off-protocol endings, of those how
    many were right when read leniently (protocol only) or wrong (the answer too), and the
    share of failures that is the protocol alone."""
    if judged.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = []
    for (model, scaffold), g in judged.groupby(["model", "scaffold"], sort=True):
        failures = int((g.outcome != "success").sum())
        protocol_only = int((g.lenient == "right").sum())
        out.append({"model": model, "scaffold": scaffold, "episodes": len(g),
                    "failures": failures, "off_protocol": int((g.outcome == "protocol_error").sum()),
                    "protocol_only": protocol_only, "answer_wrong": int((g.lenient == "wrong").sum()),
                    "not_judged": int((g.lenient == "not_judged").sum()),
                    "protocol_share": protocol_only / failures if failures else float("nan")})
    return pd.DataFrame(out, columns=COLUMNS)
