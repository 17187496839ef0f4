"""Where episodes execute. Local asyncio now; the seam for a cluster executor (e.g. Ray)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from shardscope.scaffolds.runner.matrix import EpisodeSpec, MatrixSpec
    from shardscope.tracer.spans import TracedSpan

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


@dataclass(frozen=True)
class RunJob:
    """What an executor that runs episodes in other processes needs to know about the run."""

    spec: MatrixSpec
    run_id: str
    trace_context: Mapping[str, str]  # W3C trace context of the run span
    limit_for: Callable[[str], int]  # provider -> episodes at once
    provider_of: Callable[[str], str]  # catalog id -> provider


class EpisodeExecutor(Protocol):
    """Runs a run's episodes elsewhere (other processes, other hosts), e.g. on Ray."""

    async def run_episodes(
        self, job: RunJob, todo: Sequence[EpisodeSpec], done: Callable[[EpisodeSpec, str], None],
    ) -> Mapping[str, str]:
        """Run every episode of ``todo`` once, calling ``done(episode, outcome)`` as each
        returns; returns the outcome of every episode of ``todo`` as stored (by key)."""


def trace_context(span: TracedSpan) -> dict[str, str]:
    """The W3C ``traceparent`` of ``span``, for spans that other processes start under it."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span.span))
    return carrier
