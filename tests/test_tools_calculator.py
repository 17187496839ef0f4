"""The calculator evaluates arithmetic through the AST and refuses everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardscope.scaffolds.tools import ToolContext, default_registry


@pytest.fixture
def calc(tmp_path: Path):
    tool = default_registry().get("calculator")
    ctx = ToolContext(workdir=tmp_path)
    return lambda expression: tool.run({"expression": expression}, ctx)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("-2 ** 2", "-4"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("7 % 3", "1"),
        ("2 ** 10", "1024"),
        ("round(2.567, 2)", "2.57"),
        ("sqrt(16)", "4"),
        ("max(3, 9, 4) - min(3, 9, 4)", "6"),
        ("abs(-12.5)", "12.5"),
        ("0.1 + 0.2", "0.3"),
        ("340 // 10 + 84 // 6 * 4", "90"),
    ],
)
def test_evaluates_arithmetic(calc, expression: str, expected: str) -> None:
    result = calc(expression)
    assert result.ok, result.error_message
    assert result.output == expected


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        ("__import__('os').system('echo hi')", "not allowed"),
        ("(1).real", "Attribute is not allowed"),
        ("().__class__.__bases__", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("'a' * 3", "only numbers"),
        ("x + 1", "unknown name"),
        ("lambda: 1", "not allowed"),
        ("[1, 2]", "not allowed"),
    ],
)
def test_refuses_anything_but_arithmetic(calc, expression: str, needle: str) -> None:
    result = calc(expression)
    assert not result.ok
    assert result.error_type == "calculation_error"
    assert needle in (result.error_message or "")


def test_refuses_huge_powers_before_computing_them(calc) -> None:
    result = calc("9**9**9")
    assert not result.ok
    assert "too large" in (result.error_message or "")
    assert not calc("10 ** 101").ok
    assert calc("10 ** 100").ok
    assert not calc("round(10 ** 99, -10 ** 9)").ok  # would compute 10**(10**9) internally


def test_refuses_results_beyond_the_magnitude_cap(calc) -> None:
    result = calc("10 ** 60 * 10 ** 60")
    assert not result.ok and "larger than" in (result.error_message or "")


def test_gives_actionable_messages_for_common_mistakes(calc) -> None:
    assert "**" in (calc("2 ^ 3").error_message or "")
    assert "thousands" in (calc("1,234 + 1").error_message or "")
    assert "division by zero" in (calc("1 / 0").error_message or "")


def test_bad_arguments_are_reported_not_raised(tmp_path: Path) -> None:
    tool = default_registry().get("calculator")
    result = tool.run({"expr": "1+1"}, ToolContext(workdir=tmp_path))
    assert not result.ok
    assert result.error_type == "invalid_arguments"
    assert "expression" in (result.error_message or "")
