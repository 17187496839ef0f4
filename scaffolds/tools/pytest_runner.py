"""``run_tests``: pytest in the episode's workdir, in the sandbox (see sandbox.py).

The verdict (how many tests ran and passed) does not come from a report file the tests could
rewrite: a plugin loaded from a read-only directory outside the workdir writes it to a pipe
inherited from this process, and closes it when the session ends.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult, truncate
from shardscope.scaffolds.tools.files import PathRefused, confined_path
from shardscope.scaffolds.tools.sandbox import (
    SUPPORT_TOKEN,
    WORKDIR_TOKEN,
    Completed,
    child_env,
    run_limited,
)
from shardscope.scaffolds.types import ToolSpec

_PLUGIN = "_shardscope_verdict"
_PLUGIN_SOURCE = Path(__file__).with_name("pytest_verdict.py")


@dataclass(frozen=True)
class Verdict:
    """What the verdict plugin reported: tests run (not skipped) and passed, or why none."""

    ran: int
    passed: int
    problem: str | None = None  # the channel was empty, malformed or written twice

    @property
    def all_passed(self) -> bool:
        return self.problem is None and self.ran > 0 and self.passed == self.ran


@dataclass(frozen=True)
class PytestRun:
    done: Completed
    verdict: Verdict


def refuse_target(target: str) -> str | None:
    """Why ``target`` cannot be given to pytest, or None: no option-like names."""
    if target.startswith("-"):
        return f"a test path may not start with '-': {target!r}"
    return None


def pytest_argv(target: str | None, extra: tuple[str, ...] = ()) -> list[str]:
    """The pytest command line used by ``run_tests`` and by the tests_pass checker.

    ``-P`` keeps the workdir from coming first on ``sys.path`` (it comes after the verdict
    plugin, through PYTHONPATH), so a file in it cannot stand in for the plugin. The target
    comes after ``--`` and as ``./target``: pytest 9.2 still reads ``-- --co`` as
    ``--collect-only`` (measured), so ``--`` alone does not stop an option.
    """
    argv = [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    argv += ["-p", _PLUGIN, "--color=no", *extra, "--"]
    if target is None:
        return argv
    return [*argv, target if target.startswith(("/", "./")) else f"./{target}"]


def run_pytest(
    workdir: Path, target: str | None, ctx: ToolContext, extra: tuple[str, ...] = ()
) -> PytestRun:
    """pytest on ``target`` (a path inside ``workdir``; all tests when None) under ctx's limits."""
    with tempfile.TemporaryDirectory(prefix="shardscope-plugin-") as support:
        Path(support).chmod(0o755)  # readable by the sandbox's unprivileged uid
        shutil.copyfile(_PLUGIN_SOURCE, Path(support) / f"{_PLUGIN}.py")
        env = child_env() | {"PYTHONPATH": f"{SUPPORT_TOKEN}:{WORKDIR_TOKEN}"}
        done = run_limited(
            pytest_argv(target, extra),
            workdir,
            timeout_s=ctx.timeout_s,
            memory_mb=ctx.memory_mb,
            env=env,
            support=Path(support),
            channel=True,
        )
    return PytestRun(done, read_verdict(done.channel or b""))


def read_verdict(channel: bytes) -> Verdict:
    """The plugin's one JSON line; anything else is no verdict (and never a pass)."""
    lines = channel.splitlines()
    if not lines:
        return Verdict(0, 0, "pytest reported no verdict")
    if len(lines) > 1:
        return Verdict(0, 0, f"the verdict channel was tampered with ({len(lines)} messages)")
    try:
        counts = json.loads(lines[0])
        ran = sum(int(counts[k]) for k in ("passed", "failed", "error"))
        passed = int(counts["passed"])
    except (ValueError, KeyError, TypeError):
        return Verdict(0, 0, "the verdict channel was tampered with (not a verdict)")
    return Verdict(ran, passed)


def describe_failure(done: Completed, ctx: ToolContext) -> tuple[str, str] | None:
    """(error_type, message) when the run was stopped by a limit; None when it just ran."""
    if done.setup_failed:
        return "sandbox_error", done.output.strip().splitlines()[-1]
    if done.timed_out:
        return "timeout", (
            f"the tests did not finish within {ctx.timeout_s:g} s and were killed "
            "(an infinite loop or a very slow test?)"
        )
    if done.out_of_memory or done.signal_name in ("SIGSEGV", "SIGABRT"):
        return (
            "memory_limit",
            f"the tests exceeded the memory limit of {ctx.memory_mb} MB and were stopped",
        )
    if done.signal_name in ("SIGXCPU", "SIGKILL"):
        return (
            "cpu_limit",
            f"the tests used more CPU time than allowed and were killed ({done.signal_name})",
        )
    if done.signal_name == "SIGXFSZ":
        return (
            "output_limit",
            "the tests wrote too much output or too large a file and were stopped",
        )
    return None


class RunTests(Tool):
    spec = ToolSpec(
        name="run_tests",
        description=(
            "Run the tests in the working directory with pytest (all tests, or one test file "
            "or directory) and show the result."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "a test file or directory; default: all tests",
                }
            },
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        target = arguments.get("path") or None
        if target is not None:
            refusal = refuse_target(target)
            if refusal is not None:
                return ToolResult.fail("path_refused", refusal)
            try:
                resolved = confined_path(ctx.workdir, target)
            except PathRefused as exc:
                return ToolResult.fail("path_refused", str(exc))
            if not resolved.exists():
                return ToolResult.fail("file_not_found", f"no test file or directory {target!r}")
            target = resolved.relative_to(ctx.workdir.resolve()).as_posix()
        done = run_pytest(ctx.workdir, target, ctx).done
        output = done.output if done.warning is None else f"{done.warning}\n{done.output}"
        text, cut = truncate(output, ctx.max_output_chars, keep_tail=True)
        cut = cut or done.clipped
        failure = describe_failure(done, ctx)
        if failure is not None:
            return ToolResult(False, text, failure[0], failure[1], truncated=cut)
        return ToolResult(True, text or f"pytest exited with code {done.returncode}", truncated=cut)
