"""Run a command in a subprocess with a wall-clock timeout, a memory cap and a CPU cap.

The child gets its own process group, so a timeout kills everything it started. Its output
goes to a temporary file outside the workdir (not a pipe), so a flood of output costs disk
up to a cap instead of this process's memory; only the head and tail are read back.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_CAPTURED_BYTES = 8 * 1024 * 1024  # RLIMIT_FSIZE: a child writing more is stopped
_READ_BACK = 64 * 1024


@dataclass(frozen=True)
class Completed:
    """What a sandboxed command did. ``output`` is stdout+stderr (head and tail if huge)."""

    returncode: int | None  # None when killed on timeout
    output: str
    output_bytes: int
    timed_out: bool
    signal_name: str | None  # the signal that ended the child, if one did

    @property
    def clipped(self) -> bool:
        """The middle of a huge output was skipped when reading it back."""
        return self.output_bytes > 2 * _READ_BACK

    @property
    def out_of_memory(self) -> bool:
        return "MemoryError" in self.output or "Cannot allocate memory" in self.output


def _limits(memory_mb: int, cpu_s: int) -> Callable[[], None]:
    def apply() -> None:
        # Runs in the child between fork and exec: only async-signal-tolerant calls here.
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_CAPTURED_BYTES, MAX_CAPTURED_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_limited(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout_s: float,
    memory_mb: int,
    env: dict[str, str] | None = None,
) -> Completed:
    """Run ``argv`` in ``cwd`` under the limits; never raises for what the child does."""
    with tempfile.TemporaryFile(prefix="shardscope-out-") as sink:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_limits(memory_mb, max(1, int(timeout_s) + 1)),
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        _kill_group(proc)  # stragglers the child left running in its group
        output, size = _read_back(sink)
    code = None if timed_out else proc.returncode
    sig = signal.Signals(-code).name if code is not None and code < 0 else None
    return Completed(code, output, size, timed_out, sig)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read_back(sink: IO[bytes]) -> tuple[str, int]:
    size = sink.seek(0, os.SEEK_END)
    sink.seek(0)
    if size <= 2 * _READ_BACK:
        return sink.read().decode("utf-8", errors="replace"), size
    head = sink.read(_READ_BACK)
    sink.seek(size - _READ_BACK)
    tail = sink.read()
    skipped = f"\n[... {size - 2 * _READ_BACK:,} bytes of output skipped ...]\n"
    return head.decode("utf-8", errors="replace") + skipped + tail.decode(
        "utf-8", errors="replace"
    ), size


def child_env(workdir: Path) -> dict[str, str]:
    """A small environment for code the model wrote: no secrets from ours, no plugin autoload."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        HOME=str(workdir),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONIOENCODING="utf-8",
    )
    return env
