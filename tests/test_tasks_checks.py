"""Checkers: numeric with tolerance, exact (normalized, aliases), regex, tests_pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardscope.scaffolds.tasks import Check, check, get_suite
from shardscope.scaffolds.tasks.checks import check_exact, check_numeric, check_regex, last_number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1,234", 1234.0),
        ("$12.50", 12.5),
        ("12 coins", 12.0),
        ("The answer is 42.", 42.0),
        ("It costs 1,234.5 coins", 1234.5),
        ("-5 degrees", -5.0),
        ("first 3, then 7", 7.0),
        ("task arith-003 gives 17", 17.0),
        ("no number here", None),
    ],
)
def test_last_number(text: str, number: float | None) -> None:
    assert last_number(text) == number


def test_numeric_tolerance_absolute_and_relative() -> None:
    exact = Check("numeric", expected=10.94, tolerance=0.011)
    assert check_numeric(exact, "about 10.95").outcome == "success"
    assert check_numeric(exact, "10.96").outcome == "failure"
    relative = Check("numeric", expected=1000, tolerance=0, relative=0.01)
    assert check_numeric(relative, "1,009 coins").score == 1.0
    assert check_numeric(relative, "1,011 coins").score == 0.0
    missing = check_numeric(exact, "I do not know")
    assert missing.outcome == "failure" and "no number" in missing.detail


def test_exact_is_normalized_and_takes_aliases() -> None:
    spec = Check("exact", expected="Thursday", aliases=("on Thursdays",))
    assert check_exact(spec, "  thursday. ").outcome == "success"
    assert check_exact(spec, "On Thursdays!").outcome == "success"
    assert check_exact(spec, "Tuesday").outcome == "failure"
    assert check_exact(spec, "Thursday or Tuesday").outcome == "failure"


def test_regex() -> None:
    spec = Check("regex", pattern=r"\bquick\s+hesk\b")
    assert check_regex(spec, "The leader is Quick Hesk.").outcome == "success"
    assert check_regex(spec, "Quickhesk").outcome == "failure"
    strict = Check("regex", pattern="Hesk", ignore_case=False)
    assert check_regex(strict, "hesk").outcome == "failure"


def test_tests_pass_scores_the_fraction_and_ignores_edited_tests(tmp_path: Path) -> None:
    task = get_suite("bugfix").task("bugfix-001")
    instance = task.instantiate(tmp_path)
    work = instance.tool_context.workdir
    # A model that "fixes" the tests instead of the code gains nothing: the check uses the
    # package's own tests.
    test_file = work / "tests" / "test_tax.py"
    test_file.write_text(test_file.read_text().replace("== 5", "== 0"))
    (work / "conftest.py").write_text("import pytest\ncollect_ignore_glob = ['tests/*']\n")
    result = check(task, "I fixed it", instance)
    assert result.outcome == "failure"
    assert result.detail == "26/27 tests passed" and result.score == pytest.approx(26 / 27)


def test_tests_pass_with_broken_code_scores_zero(tmp_path: Path) -> None:
    task = get_suite("bugfix").task("bugfix-001")
    instance = task.instantiate(tmp_path)
    (instance.tool_context.workdir / "ledger" / "tax.py").write_text("def tithe(:\n")
    result = check(task, None, instance)
    assert result.outcome == "failure" and result.score < 0.9
