"""A pytest plugin, loaded by name inside the sandbox: the verdict, written to an inherited fd.

It imports nothing from shardscope (the sandbox cannot see it). It counts each test's worst
outcome and, when the session finishes, writes one JSON line to the file descriptor named
by ``CHANNEL_FD`` and closes it, before any ``atexit`` hook of the code under test runs.
The reader outside treats anything but exactly one well-formed line as tampering.
"""

from __future__ import annotations

import json
import os
from typing import Any

_RANK = {"skipped": 0, "passed": 1, "failed": 2, "error": 3}
_outcomes: dict[str, str] = {}
_fd: list[int] = []


def pytest_configure(config: Any) -> None:
    raw = os.environ.pop("CHANNEL_FD", None)  # the code under test need not know it
    if raw is not None and raw.isdigit():
        _fd.append(int(raw))


def _record(nodeid: str, outcome: str) -> None:
    if _RANK[outcome] >= _RANK.get(_outcomes.get(nodeid, "skipped"), 0):
        _outcomes[nodeid] = outcome


def pytest_runtest_logreport(report: Any) -> None:
    if report.failed:
        _record(report.nodeid, "failed" if report.when == "call" else "error")
    elif report.skipped:
        _record(report.nodeid, "skipped")
    elif report.when == "call":
        _record(report.nodeid, "passed")


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _record(report.nodeid or "<collection>", "error")


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    if not _fd:
        return
    counts = dict.fromkeys(_RANK, 0)
    for outcome in _outcomes.values():
        counts[outcome] += 1
    line = json.dumps({**counts, "exitstatus": int(exitstatus)}) + "\n"
    fd = _fd.pop()
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
