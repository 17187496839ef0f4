"""Judging a final answer: exact (normalized), numeric (with tolerance), regex, tests_pass;
and the calls of declared functions: tool_call, irrelevance (:mod:`.tool_checks`)."""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from shardscope.scaffolds.tasks.model import Check, CheckResult, TaskInstance
from shardscope.scaffolds.tasks.suite import Task
from shardscope.scaffolds.tasks.tool_checks import check_irrelevance, check_tool_calls
from shardscope.scaffolds.tools.pytest_runner import describe_failure, run_pytest
from shardscope.scaffolds.types import ToolCall

_NUMBER = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,]*\d)|(?<![\w.])-?\.\d+"
)
_PUNCT = re.compile(r"[^\w\s]")
_CONFIG_FILES = ("conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini")
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def check(
    task: Task,
    final_answer: str | None,
    instance: TaskInstance,
    calls: Sequence[ToolCall] = (),
) -> CheckResult:
    """Judge ``final_answer`` (or, for tests_pass, the instance's files; for tool_call and
    irrelevance, the ``calls`` of declared functions) by the task's check."""
    spec = task.check
    if spec.type == "irrelevance":
        return check_irrelevance(calls)
    if spec.type == "tool_call":
        return check_tool_calls(spec, instance.declared, calls)
    if spec.type == "tests_pass":
        if spec.answer_file is not None:
            if final_answer is None or not final_answer.strip():
                return CheckResult("failure", 0.0, "no final answer (no code to test)")
            solution = answer_code(final_answer, spec.prelude, spec.entry_point)
            (instance.tool_context.workdir / spec.answer_file).write_text(solution, "utf-8")
        return check_tests(spec, task, instance)
    if final_answer is None or not final_answer.strip():
        return CheckResult("failure", 0.0, "no final answer")
    if spec.type == "numeric":
        return check_numeric(spec, final_answer)
    if spec.type == "exact":
        return check_exact(spec, final_answer)
    return check_regex(spec, final_answer)


def answer_code(answer: str, prelude: str, entry_point: str | None) -> str:
    """The module a code answer becomes: the fenced code (else the whole answer) after the
    prelude (the original stub, so its imports and helpers exist). An answer that does not
    define ``entry_point`` is taken as the body that completes the stub."""
    blocks = _FENCE.findall(answer)
    code = max(blocks, key=len) if blocks else answer
    if entry_point and not re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return prelude + code.rstrip() + "\n"
    return prelude.rstrip() + "\n\n\n" + code.strip() + "\n"


def _result(ok: bool, detail: str) -> CheckResult:
    return CheckResult("success" if ok else "failure", 1.0 if ok else 0.0, detail)


def last_number(text: str) -> float | None:
    """The last number in ``text``: "1,234" -> 1234, "$12.50" -> 12.5, "12 coins" -> 12."""
    found = _NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def check_numeric(spec: Check, answer: str) -> CheckResult:
    value = last_number(answer)
    expected = float(spec.expected)  # type: ignore[arg-type]
    if value is None:
        return _result(False, f"no number in the answer; expected {expected:g}")
    allowed = max(spec.tolerance, spec.relative * abs(expected))
    ok = (
        math.isclose(value, expected, rel_tol=0.0, abs_tol=allowed)
        or abs(value - expected) <= allowed
    )
    return _result(ok, f"answer {value:g}, expected {expected:g} (tolerance {allowed:g})")


def normalize(text: str) -> str:
    """Lower-case, accents folded, punctuation dropped, whitespace collapsed."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(_PUNCT.sub(" ", folded.lower()).split())


def check_exact(spec: Check, answer: str) -> CheckResult:
    accepted = [str(spec.expected), *spec.aliases]
    ok = normalize(answer) in {normalize(a) for a in accepted}
    return _result(ok, f"answer {answer.strip()[:200]!r}, expected {accepted[0]!r}")


def check_regex(spec: Check, answer: str) -> CheckResult:
    flags = re.IGNORECASE if spec.ignore_case else 0
    ok = re.search(str(spec.pattern), answer, flags) is not None
    return _result(ok, f"pattern {spec.pattern!r} {'found' if ok else 'not found'} in the answer")


def check_tests(spec: Check, task: Task, instance: TaskInstance) -> CheckResult:
    """Run the package's pristine tests against the model's version of the other files."""
    package = task.world.package_dir
    assert package is not None, "the loader requires a package for tests_pass checks"
    ctx = instance.tool_context
    with tempfile.TemporaryDirectory(prefix="shardscope-check-") as scratch:
        tree = Path(scratch) / "tree"
        _assemble(package, ctx.workdir, tree, spec.tests)
        run = run_pytest(tree, spec.tests, ctx)
    failure = describe_failure(run.done, ctx)
    if failure is not None:
        return CheckResult("failure", 0.0, f"{failure[0]}: {failure[1]}")
    verdict = run.verdict
    if verdict.problem is not None or verdict.ran == 0:
        tail = run.done.output.strip().splitlines()[-1:] or ["no output"]
        return CheckResult("failure", 0.0, f"no tests ran: {verdict.problem or tail[0]}")
    ok = verdict.all_passed
    return CheckResult(
        "success" if ok else "failure",
        verdict.passed / verdict.ran,
        f"{verdict.passed}/{verdict.ran} tests passed",
    )


def _assemble(package: Path, work: Path, tree: Path, tests: str) -> None:
    """The model's files, with the tests and test configuration taken from the package."""
    protected = {tests.split("/")[0], *_CONFIG_FILES}
    shutil.copytree(
        work,
        tree,
        symlinks=True,
        ignore=lambda d, names: [n for n in names if n in protected or n == "__pycache__"],
    )
    for name in sorted(protected):
        source = package / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, tree / name)


def answers_implied(check: Check, implied: str, answer: str | None) -> bool:
    """Whether ``answer`` gives ``implied`` by the task's own kind of check."""
    if not answer or not answer.strip():
        return False
    if check.type == "numeric":
        try:
            spec = Check("numeric", expected=float(implied), tolerance=check.tolerance,
                         relative=check.relative)
        except ValueError:
            return False
        return check_numeric(spec, answer).outcome == "success"
    return check_exact(Check("exact", expected=implied), answer).outcome == "success"
