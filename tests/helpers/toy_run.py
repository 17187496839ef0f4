"""A toy matrix run in its own process (scripted models, toy suite), for kill/resume tests.

Prints ``episode <key> <outcome>`` as episodes finish. ``--resume`` continues the latest run
in the store, skipping the episode keys already there and marking the attempts a killed
process left behind as abandoned (as ``shardscope run --resume`` does). SIGTERM exits with
128 + 15 once the run is marked interrupted. ``--hold FILE``: once an episode is announced, no
episode finishes until FILE exists, so a test can look at a run that is provably mid-way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer.queries.runs import completed_episode_keys, orphan_episode_ids, run_info
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes


def policy(delay: float, busy: bool = False):
    """Answers 2 + 3 with the add tool; ``busy`` spends the delay computing in Python on the
    main thread (a signal then lands inside an episode) instead of awaiting it."""
    def answer(messages, tools, config):
        wait = delay
        if busy:
            deadline = time.perf_counter() + delay
            while time.perf_counter() < deadline:
                pass
            wait = 0.0
        if len(messages) <= 2:
            return Scripted(tool_calls=(ToolCall("c", "add", {"a": 2, "b": 3}),), delay_s=wait)
        return Scripted(text="Final Answer: 5", delay_s=wait)

    return answer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--busy", action="store_true", help="compute the delay, do not await it")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hold", type=Path, help="after the first episode, wait for this file")
    args = parser.parse_args()
    tracing = setup_tracing(Settings(db=args.db, flush_interval=0.1), install_signal_handlers=True)
    answer = policy(args.delay, args.busy)
    models = {
        name: TracedModel(ScriptedBackend(model=name, policy=answer), tracing, model_id=name)
        for name in ("toy-a", "toy-b")
    }
    spec = MatrixSpec(suites=("toy",), models=tuple(models), scaffolds=("react-tools",), seeds=args.seeds)
    run_id, done, orphans = None, set(), []
    if args.resume:
        info = run_info(Store(args.db))
        assert info is not None
        run_id, done = info["run_id"], completed_episode_keys(Store(args.db), info["run_id"])
        orphans = orphan_episode_ids(Store(args.db), run_id)
        spec = MatrixSpec.from_json(info["config"])
    runner = Runner(tracing, fakes.resources(models, tasks=args.tasks), progress=False)
    original = runner._episode

    async def announce(episode, scaffold, spec_, report, progress):
        await original(episode, scaffold, spec_, report, progress)
        tracing.force_flush(30)  # the line below promises the episode is stored
        print(f"episode {episode.key}", flush=True)
        while args.hold is not None and not args.hold.exists():
            await asyncio.sleep(0.05)

    runner._episode = announce  # type: ignore[method-assign]
    try:
        report = asyncio.run(runner.run(spec, run_id=run_id, done_keys=done, orphans=orphans))
    finally:
        tracing.shutdown()
    print(f"finished {report.run_id} ran={report.ran} skipped={report.skipped} "
          f"orphans={len(orphans)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
