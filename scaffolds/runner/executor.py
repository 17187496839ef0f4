"""Where episodes execute. Local asyncio now; the seam for a cluster executor (e.g. Ray)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

Job = TypeVar("Job")


class Executor(Protocol):
    async def run(
        self,
        jobs: Sequence[Job],
        work: Callable[[Job], Awaitable[None]],
        key: Callable[[Job], str],
    ) -> None:
        """Run ``work(job)`` for every job, at most ``limit(key(job))`` at a time per key."""


class LocalExecutor:
    """asyncio in this process, one semaphore per key (provider); jobs start in order.

    A SystemExit or KeyboardInterrupt raised inside a job (SIGTERM becomes SystemExit, see
    tracer.setup) stops the whole run like a cancellation: every other job is cancelled and
    awaited, then ``run`` raises it. Left to escape its task, it would stop the event loop
    with the other jobs still in flight."""

    def __init__(self, limit_for: Callable[[str], int]) -> None:
        self.limit_for = limit_for

    async def run(
        self,
        jobs: Sequence[Job],
        work: Callable[[Job], Awaitable[None]],
        key: Callable[[Job], str],
    ) -> None:
        semaphores: dict[str, asyncio.Semaphore] = {}
        exits: list[BaseException] = []

        async def one(job: Job) -> None:
            name = key(job)
            if name not in semaphores:
                semaphores[name] = asyncio.Semaphore(self.limit_for(name))
            try:
                async with semaphores[name]:
                    await work(job)
            except (SystemExit, KeyboardInterrupt) as exc:
                exits.append(exc)
                for task in tasks:
                    if task is not asyncio.current_task():
                        task.cancel()

        tasks = [asyncio.create_task(one(job)) for job in jobs]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            if not exits:
                raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if exits:
            raise exits[0]
