"""Fixture stores for the UI tests, made by the real runner (scripted models, real OpenTelemetry
SDK, real DuckDB), so the app is tested on exactly what a run writes.

The matrix is small and fully determined, so tests can assert exact numbers:

- suite ``toy``: tasks t0, t1, t2 (the prompt names the task, so policies can differ by task);
- scaffolds ``react-tools`` (native tool calls) and ``react-text`` (text protocol), 3 steps max;
- seeds 0 and 1; models:
  - ``alpha``: adds with the tool, answers 5: success everywhere; streams logprobs; priced;
  - ``beta``: t0 answers 6 (failure), t1 replies nothing (protocol_error), t2 calls the tool
    forever (budget_exhausted);
  - ``gamma``: t0 a non-retryable backend error (outcome ``error``), t1 one 503 then success
    (a retried call), t2 success.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from shardscope.config.catalog import Price
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.errors import BadRequestError, ServerError
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Resources, Runner
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes

MODELS = ("alpha", "beta", "gamma")
TASKS = ("t0", "t1", "t2")
SCAFFOLDS = ("react-tools", "react-text")
SEEDS = 2
EPISODES = len(MODELS) * len(TASKS) * len(SCAFFOLDS) * SEEDS  # 36
# Expected outcome counts per model (each task runs under 2 scaffolds x 2 seeds = 4 times).
OUTCOMES = {
    "alpha": {"success": 12},
    "beta": {"failure": 4, "protocol_error": 4, "budget_exhausted": 4},
    "gamma": {"error": 4, "success": 8},
}
RUN_NAME = "ui-fixture"
SPEC = MatrixSpec(
    suites=("toy",), models=MODELS, scaffolds=SCAFFOLDS, seeds=SEEDS,
    scaffold_params={"react-tools": {"max_steps": 3}, "react-text": {"max_steps": 3}},
    name=RUN_NAME,
)


Task = fakes.NamedTask


def _task_of(messages: Sequence[Any]) -> str:
    text = " ".join(m.content for m in messages)
    match = re.search(r"Task (t\d+):", text)
    return match.group(1) if match else "?"


def _observed(messages: Sequence[Any]) -> bool:
    """Has the model already seen a tool result?"""
    return any(m.role == "tool" for m in messages) or "Observation: 5" in messages[-1].content


def _tool(native: bool, step: int) -> Scripted | str:
    if native:
        return Scripted(tool_calls=(ToolCall(f"call-{step}", "add", {"a": 2, "b": 3}),))
    return 'Thought: I should add.\nAction: add\nAction Input: {"a": 2, "b": 3}'


def _final(native: bool, answer: str) -> str:
    return f"Final Answer: {answer}" if native else f"I now know the final answer\nFinal Answer: {answer}"


def alpha(messages, tools, config):
    native = bool(tools)
    return _final(native, "5") if _observed(messages) else _tool(native, len(messages))


def beta(messages, tools, config):
    native, task = bool(tools), _task_of(messages)
    if task == "t1":
        return ""  # neither a tool call nor an answer: a protocol error every time
    if task == "t2":
        return _tool(native, len(messages))  # never answers: runs out of steps
    return _final(native, "6") if _observed(messages) else _tool(native, len(messages))


class Gamma:
    """t0: the provider rejects the request; t1: one 503, then fine; t2: fine."""

    def __init__(self) -> None:
        self.failed_once: set[str] = set()

    def __call__(self, messages, tools, config):
        native, task = bool(tools), _task_of(messages)
        key = f"{task}/{native}/{config.seed}"
        if task == "t0":
            return Scripted(error=BadRequestError("model gamma rejects this prompt", status_code=400))
        if task == "t1" and key not in self.failed_once:
            self.failed_once.add(key)
            return Scripted(error=ServerError("upstream overloaded", status_code=503))
        return _final(native, "5") if _observed(messages) else _tool(native, len(messages))


async def _no_wait(seconds: float) -> None:
    return None


def _models(tracing: Any) -> dict[str, TracedModel]:
    policies = {"alpha": alpha, "beta": beta, "gamma": Gamma()}
    return {
        name: TracedModel(
            ScriptedBackend(model=name, policy=policy), tracing, model_id=name,
            logprobs=name == "alpha", top_logprobs=2 if name == "alpha" else 0,
            price=Price(1.0, 2.0) if name == "alpha" else None, sleep=_no_wait,
        )
        for name, policy in policies.items()
    }


def _resources(models: dict[str, TracedModel]) -> Resources:
    suite = fakes.Suite("toy", tuple(Task(t) for t in TASKS))
    return Resources(
        suites={"toy": suite}, registry=fakes.Registry(), open_model=lambda m: models[m],
        provider_of=lambda m: "scripted", check=fakes.check, known_models=lambda: sorted(models),
    )


def build_store(path: Path) -> Path:
    """Run the fixture matrix into a new store at ``path``; returns the path."""
    tracing = setup_tracing(Settings(db=path, flush_interval=0.1), strict=True)
    try:
        runner = Runner(tracing, _resources(_models(tracing)), progress=False)
        asyncio.run(runner.run(SPEC))
    finally:
        tracing.shutdown()
    return path


def build_empty_store(path: Path) -> Path:
    """A store with the schema but no span (what a run leaves before its first flush)."""
    with Store(path).writer():
        pass
    return path


# --- pytest fixtures (import them into a test module to use them) ---------------------------


@pytest.fixture(scope="session")
def fixture_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture matrix's store, built once per session; tests must only read it."""
    return build_store(tmp_path_factory.mktemp("ui-store") / "fixture.duckdb")


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    return build_empty_store(tmp_path / "empty.duckdb")


@pytest.fixture
def missing_store(tmp_path: Path) -> Path:
    return tmp_path / "nothing-here" / "missing.duckdb"
