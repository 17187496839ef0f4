"""The toy matrix (scripted models, toy suite) on Ray: the resources a worker process
rebuilds (module-level, so the executor's plan pickles them by reference), and a driver
process for interruption tests (``python -m tests.helpers.ray_toy``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shardscope.commands.run import _resume_target
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.executor import RunJob
from shardscope.scaffolds.runner.matrix import EpisodeSpec, MatrixSpec
from shardscope.scaffolds.runner.ray_executor import RayExecutor, RayOptions
from shardscope.scaffolds.runner.runner import Resources, Runner
from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, ToolSpec
from shardscope.tracer.queries.runs import run_info
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.spans import Tracing
from shardscope.tracer.store import Store
from tests import fakes
from tests.helpers.toy_run import policy

MODELS = ("toy-a", "toy-b")


@dataclass
class PlannedBackend(ScriptedBackend):
    """A scripted backend that records in each call's raw request the concurrency planned for
    it (``plan_concurrency``), as the local backend records its ``slots``."""

    planned: int | None = None

    def plan_concurrency(self, n: int) -> None:
        self.planned = n

    async def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (),
                       config: GenerationConfig = GenerationConfig()) -> ModelOutput:
        output = await super().generate(messages, tools, config)
        return dataclasses.replace(output, raw_request={**output.raw_request,
                                                        "planned": self.planned})


def toy_resources(settings: Settings, tracing: Tracing, *, delay: float = 0.0, tasks: int = 2,
                  provider: str = "scripted") -> Resources:
    models = {n: TracedModel(PlannedBackend(model=n, policy=policy(delay)), tracing, model_id=n)
              for n in MODELS}
    resources = fakes.resources(models, tasks=tasks)
    resources.provider_of = lambda model_id: provider
    return resources


def main() -> int:
    """The toy matrix through ``--executor ray`` in its own driver process (for interruption
    tests): prints ``episode <key> <outcome>`` as workers return, and with ``--resume`` picks
    up the latest run as ``shardscope run --resume`` does (stored keys skipped, orphans marked)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--address", required=True, help="the Ray cluster to connect to")
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    settings = Settings(db=Path(args.db), flush_interval=0.1)
    store = Store(settings.db)
    spec = MatrixSpec(suites=("toy",), models=MODELS, scaffolds=("react-tools",), seeds=args.seeds,
                      concurrency={"scripted": args.concurrency})
    target = _resume_target(store, run_info(store)["run_id"]) if args.resume else None
    tracing = setup_tracing(settings, install_signal_handlers=True)
    factory = functools.partial(toy_resources, delay=args.delay, tasks=args.tasks)
    executor = _Announcing(settings, factory, tracing, store, RayOptions(address=args.address))
    runner = Runner(tracing, factory(settings, tracing), progress=False, executor=executor)
    try:
        if target is None:
            report = asyncio.run(runner.run(spec))
        else:
            assert target.spec is not None
            report = asyncio.run(runner.run(target.spec, run_id=target.run_id, done_keys=target.done,
                                            orphans=target.orphans))
    finally:
        tracing.shutdown()
    print(f"finished {report.run_id} ran={report.ran} skipped={report.skipped} "
          f"orphans={len(target.orphans) if target else 0} lost={executor.lost_attempts}", flush=True)
    return 0


class _Announcing(RayExecutor):
    async def run_episodes(self, job: RunJob, todo: Sequence[EpisodeSpec],
                           done: Callable[[EpisodeSpec, str], None]) -> Mapping[str, str]:
        def announce(episode: EpisodeSpec, outcome: str) -> None:
            done(episode, outcome)
            print(f"episode {episode.key} {outcome}", flush=True)

        return await super().run_episodes(job, todo, announce)


class KillOnce(RayExecutor):
    """SIGKILLs the first pool worker's process once ``kill_after`` episodes have come back
    (the test's and bench/ray_matrix.py's worker kill)."""

    kill_after = 5
    killed_pid: int | None = None

    async def run_episodes(self, job: RunJob, todo: Sequence[EpisodeSpec],
                           done: Callable[[EpisodeSpec, str], None]) -> Mapping[str, str]:
        returned = 0

        def kill(episode: EpisodeSpec, outcome: str) -> None:
            nonlocal returned
            done(episode, outcome)
            returned += 1
            if returned == self.kill_after:
                self.killed_pid = self.worker_pids["pool-0"]
                os.kill(self.killed_pid, signal.SIGKILL)

        return await super().run_episodes(job, todo, kill)


if __name__ == "__main__":
    sys.exit(main())
