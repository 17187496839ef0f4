"""Waiting on data, not on the clock: poll a condition until it holds, with a large deadline.

The deadline only stops a hung test; it is never a speed bound (a busy machine must pass)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE_S = 300.0


def wait_until(probe: Callable[[], T], what: str | Callable[[], str], timeout: float = DEADLINE_S,
               interval: float = 0.05) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    ``what`` names the awaited thing (or builds a message) for the failure after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = what() if callable(what) else what
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)
