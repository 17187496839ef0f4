"""Stores with planted behaviour differences, made by the real runner (scripted models, real
OpenTelemetry SDK, real DuckDB), for the comparison tests.

- ``divergence``: models ``lead`` and ``follow`` call ``add`` five times then answer 5; on
  task ``t{i}`` ``follow`` departs at step ``i % 5``: on even tasks it calls ``add`` with
  other arguments at that step (and then goes on like ``lead``), on odd tasks it answers
  early.
- ``dependence``: tasks state "a is 2. b is 3."; ``uses-a`` reads a and assumes b is 3;
  ``uses-b`` reads b and assumes a is 2; each is wrong on its own in one task-seed of ten.
  Ablation runs remove or replace each shard.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Resources, Runner
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer.setup import setup_tracing
from tests import fakes

STEPS = 5  # tool calls before the answer
DIVERGENCE_TASKS = 20
DIVERGENCE_SPEC = MatrixSpec(suites=("toy",), models=("lead", "follow"), scaffolds=("react-tools",),
                             seeds=2, scaffold_params={"react-tools": {"max_steps": 8}},
                             name="divergence")
DEPENDENCE_TASKS = 6
DEPENDENCE_SPEC = MatrixSpec(suites=("toy",), models=("uses-a", "uses-b"), scaffolds=("react-tools",),
                             seeds=3, ablations="both", name="dependence")


def planted_step(task_id: str) -> int:
    return int(task_id[1:]) % STEPS


def _prompt(messages: Sequence[Any]) -> str:
    return next(m.content for m in messages if m.role == "user")


def _task(messages: Sequence[Any]) -> str:
    found = re.search(r"Task (t\d+):", _prompt(messages))
    return found.group(1) if found else "?"


def _done(messages: Sequence[Any]) -> int:
    return sum(m.role == "tool" for m in messages)


def _call(step: int, a: int, b: int) -> Scripted:
    return Scripted(tool_calls=(ToolCall(f"call-{step}", "add", {"a": a, "b": b}),))


def lead(messages, tools, config):
    task, step = int(_task(messages)[1:]), _done(messages)
    return _call(step, task, step) if step < STEPS else "Final Answer: 5"


def follow(messages, tools, config):
    task, step = int(_task(messages)[1:]), _done(messages)
    if step == task % STEPS:
        if task % 2:
            return "Final Answer: 5"
        return _call(step, task, 100 + step)
    return lead(messages, tools, config)


def _unlucky(model: str, messages: Sequence[Any], seed: int | None) -> bool:
    digest = hashlib.sha256(f"{model}/{_task(messages)}/{seed}".encode()).digest()
    return digest[0] % 10 == 0


def _reader(model: str, shard: str, assumed: int):
    def policy(messages, tools, config):
        found = re.search(rf"\b{shard} is (\d+)", _prompt(messages))
        if found is None:
            return f"Final Answer: I do not know {shard}"
        if _unlucky(model, messages, config.seed):
            return "Final Answer: 6"
        return f"Final Answer: {int(found.group(1)) + assumed}"

    return policy


def _resources(models: dict[str, TracedModel], tasks: int) -> Resources:
    suite = fakes.Suite("toy", tuple(fakes.NamedTask(f"t{i}") for i in range(tasks)))
    return Resources(suites={"toy": suite}, registry=fakes.Registry(),
                     open_model=lambda m: models[m], provider_of=lambda m: "scripted",
                     check=fakes.check, known_models=lambda: sorted(models))


def _build(path: Path, policies: dict[str, Any], spec: MatrixSpec, tasks: int) -> Path:
    tracing = setup_tracing(Settings(db=path, flush_interval=0.1), strict=True)
    try:
        models = {name: TracedModel(ScriptedBackend(model=name, policy=policy), tracing, model_id=name)
                  for name, policy in policies.items()}
        asyncio.run(Runner(tracing, _resources(models, tasks), progress=False).run(spec))
    finally:
        tracing.shutdown()
    return path


def build_divergence_store(path: Path) -> Path:
    return _build(path, {"lead": lead, "follow": follow}, DIVERGENCE_SPEC, DIVERGENCE_TASKS)


def build_dependence_store(path: Path) -> Path:
    policies = {"uses-a": _reader("uses-a", "a", 3), "uses-b": _reader("uses-b", "b", 2)}
    return _build(path, policies, DEPENDENCE_SPEC, DEPENDENCE_TASKS)


# --- pytest fixtures (import them into a test module to use them; read-only stores) ---------
@pytest.fixture(scope="session")
def divergence_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_divergence_store(tmp_path_factory.mktemp("divergence") / "div.duckdb")


@pytest.fixture(scope="session")
def dependence_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dependence_store(tmp_path_factory.mktemp("dependence") / "dep.duckdb")


def dependence_suite(directory: Path) -> Path:
    """The toy suite's tasks as a suite file whose replacements declare implied_answer:
    a replaced by 7 implies 7 + 3 = 10, b replaced by 7 implies 2 + 7 = 9."""
    lines = ['[suite]', 'name = "toy"', 'description = "a + b"', 'tools = ["calculator"]']
    for i in range(DEPENDENCE_TASKS):
        lines += ["", "[[tasks]]", f'id = "t{i}"', 'prompt = "{a} {b} What is a + b?"',
                  'reference = "5"', 'check = { type = "exact", expected = "5" }']
        for name, value, implied in (("a", 2, "10"), ("b", 3, "9")):
            lines += ["", "[[tasks.shards]]", f'name = "{name}"', 'kind = "fact"',
                      f'description = "{name}"', f'content = "{name} is {value}."',
                      f'replacement = "{name} is 7."', f'implied_answer = "{implied}"']
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "toy.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory
