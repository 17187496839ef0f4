"""A store shaped like `make demo` followed by `shardscope ablate`, made by the real runner
(scripted models under the demo's model ids, real OpenTelemetry SDK, real DuckDB), for the
tests that run the README's queries and the app's defaults on what a newcomer sees.

- ``smollm2-135m-instruct`` answers at once, wrongly (6), under both scaffolds (on t2 under
  react-text it first breaks the protocol);
- ``qwen2.5-coder-0.5b-instruct`` (logprobs recorded, as with ``--logprobs``) calls ``add``
  first with a bad argument (a failed call, its error shown to the model), then correctly,
  and answers its result: success while both facts are there (a removed fact counts as 0);
- a baseline run ("demo") of 3 tasks x 2 scaffolds x 2 models, then an ablation run
  ("ablate") of react-text with each shard removed.
"""

from __future__ import annotations

import asyncio
import json
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
from shardscope.tracer.queries.runs import stored_baseline_keys
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes

SMOL, QWEN = "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"
TASKS = 3
DEMO_SPEC = MatrixSpec(suites=("toy",), models=(SMOL, QWEN), scaffolds=("react-tools", "react-text"),
                       seeds=1, name="demo")
ABLATE_SPEC = MatrixSpec(suites=("toy",), models=(SMOL, QWEN), scaffolds=("react-text",), seeds=1,
                         ablations="removed", name="ablate")


def _seen(messages: Sequence[Any]) -> list[str]:
    """The tool results the model was shown so far (tool messages, or text observations)."""
    return [m.content for m in messages if m.role == "tool"] + re.findall(
        r"Observation: (.*)", messages[-1].content)


def smol(messages, tools, config):
    if tools:
        return "Final Answer: 6"
    if "Task t2:" in messages[-1].content and "Invalid format" not in messages[-1].content:
        return " The answer is 6."  # breaks the text protocol once
    return "I now know the final answer\nFinal Answer: 6"


def qwen(messages, tools, config):
    native = bool(tools)
    prompt = next(m.content for m in messages if m.role == "user")
    facts = re.findall(r"\b[ab] is (\d+)", prompt)
    seen = _seen(messages)
    good = [s for s in seen if s.strip().isdigit()]
    if good:
        return f"Final Answer: {good[-1].strip()}"
    facts += ["0"] * (2 - len(facts))  # a removed fact: it adds 0 in its place
    args = {"a": int(facts[0]), "b": int(facts[1])} if seen else {"a": "two", "b": int(facts[1])}
    if native:
        return Scripted(tool_calls=(ToolCall(f"call-{len(messages)}", "add", args),))
    return f"Action: add\nAction Input: {json.dumps(args)}"


def build_demo_store(path: Path) -> Path:
    tracing = setup_tracing(Settings(db=path, flush_interval=0.1), strict=True)
    try:
        models = {
            SMOL: TracedModel(ScriptedBackend(model=SMOL, policy=smol), tracing, model_id=SMOL),
            QWEN: TracedModel(ScriptedBackend(model=QWEN, policy=qwen), tracing, model_id=QWEN,
                              logprobs=True, top_logprobs=2),
        }
        suite = fakes.Suite("toy", tuple(fakes.NamedTask(f"t{i}") for i in range(TASKS)))
        resources = Resources(suites={"toy": suite}, registry=fakes.Registry(),
                              open_model=lambda m: models[m], provider_of=lambda m: "scripted",
                              check=fakes.check, known_models=lambda: sorted(models))
        asyncio.run(Runner(tracing, resources, progress=False).run(DEMO_SPEC))
        tracing.force_flush()
        baselines = stored_baseline_keys(Store(path))
        asyncio.run(Runner(tracing, resources, progress=False).run(ABLATE_SPEC, reused_keys=baselines))
    finally:
        tracing.shutdown()
    return path


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo-like store, built once per session; tests must only read it."""
    return build_demo_store(tmp_path_factory.mktemp("demo-store") / "demo.duckdb")
