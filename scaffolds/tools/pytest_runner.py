"""``run_tests``: pytest in the episode's workdir, in a sandboxed subprocess."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult, truncate
from shardscope.scaffolds.tools.files import PathRefused, confined_path
from shardscope.scaffolds.tools.sandbox import Completed, child_env, run_limited
from shardscope.scaffolds.types import ToolSpec


def pytest_argv(target: str | None, extra: tuple[str, ...] = ()) -> list[str]:
    """The pytest command line used by ``run_tests`` and by the tests_pass checker."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no", *extra]
    return argv + ([target] if target else [])


def run_pytest(
    workdir: Path, target: str | None, ctx: ToolContext, extra: tuple[str, ...] = ()
) -> Completed:
    """pytest on ``target`` (a path inside ``workdir``; all tests when None) under ctx's limits."""
    return run_limited(
        pytest_argv(target, extra),
        workdir,
        timeout_s=ctx.timeout_s,
        memory_mb=ctx.memory_mb,
        env=child_env(workdir),
    )


def describe_failure(done: Completed, ctx: ToolContext) -> tuple[str, str] | None:
    """(error_type, message) when the run was stopped by a limit; None when it just ran."""
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
            try:
                resolved = confined_path(ctx.workdir, target)
            except PathRefused as exc:
                return ToolResult.fail("path_refused", str(exc))
            if not resolved.exists():
                return ToolResult.fail("file_not_found", f"no test file or directory {target!r}")
            target = resolved.relative_to(ctx.workdir.resolve()).as_posix()
        done = run_pytest(ctx.workdir, target, ctx)
        text, cut = truncate(done.output, ctx.max_output_chars, keep_tail=True)
        cut = cut or done.clipped
        failure = describe_failure(done, ctx)
        if failure is not None:
            return ToolResult(False, text, failure[0], failure[1], truncated=cut)
        return ToolResult(True, text or f"pytest exited with code {done.returncode}", truncated=cut)
