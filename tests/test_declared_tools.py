"""Declared tools through the real runner with the scripted backend: the call is offered,
recorded (not executed), ends the episode, and is judged by the tool_call check."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.base import Capabilities
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Resources, Runner
from shardscope.scaffolds.tasks import check, load_suite
from shardscope.scaffolds.tools import default_registry
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store

SUITE = '''
[suite]
name = "fn"
description = "declared functions"
tools = []

[[tasks]]
id = "fact-5"
prompt = "Calculate the factorial of 5."
functions = '[{"name": "math_factorial", "description": "n!", "parameters": {"type": "object", "properties": {"number": {"type": "integer", "description": "n"}}, "required": ["number"]}}]'
check = { type = "tool_call", calls = '[{"math_factorial": {"number": [5]}}]' }

[[tasks.shards]]
name = "desc"
kind = "function"
function = "math_factorial"
field = "description"
description = "what the function does"
replacement = "Returns the square root."

[[tasks]]
id = "fact-5-and-6"
prompt = "Calculate the factorials of 5 and 6."
functions = '[{"name": "math_factorial", "description": "n!", "parameters": {"type": "object", "properties": {"number": {"type": "integer", "description": "n"}}, "required": ["number"]}}]'
check = { type = "tool_call", calls = '[{"math_factorial": {"number": [5]}}, {"math_factorial": {"number": [6]}}]' }

[[tasks.shards]]
name = "desc"
kind = "function"
function = "math_factorial"
field = "description"
description = "what the function does"
'''


def run(db: Path, scaffold: str, responses: list, tmp_path: Path, native: bool = True,
        task: str = "fact-5") -> Store:
    path = tmp_path / "fn.toml"
    path.write_text(SUITE, encoding="utf-8")
    suite = load_suite(path)
    tracing = setup_tracing(Settings(db=db), strict=True)
    backend = ScriptedBackend(model="toy-model", responses=responses)
    if not native:
        backend.capabilities = Capabilities(tools=False, streaming=True, logprobs=False)
    model = TracedModel(backend, tracing, model_id="toy")
    resources = Resources(suites={"fn": suite}, registry=default_registry(),
                          open_model=lambda m: model, provider_of=lambda m: "scripted",
                          check=check, known_models=lambda: ["toy"])
    spec = MatrixSpec(suites=("fn",), models=("toy",), scaffolds=(scaffold,), tasks=(task,))
    asyncio.run(Runner(tracing, resources, progress=False).run(spec))
    tracing.shutdown()
    return Store(db)


def test_native_call_is_recorded_not_run_and_ends_the_episode(db_path: Path, tmp_path: Path) -> None:
    store = run(db_path, "react-tools",
                [Scripted(tool_calls=(ToolCall("c1", "math_factorial", {"number": 5}),)),
                 "Final Answer: never asked"], tmp_path)
    ep = read_frame(store, "SELECT outcome, steps, tool_calls FROM episodes").iloc[0]
    assert (ep.outcome, ep.steps, ep.tool_calls) == ("success", 1, 1)
    span = read_frame(store, """SELECT attributes->>'$."shardscope.tool.declared"' AS declared,
                                       attributes->>'$."gen_ai.tool.name"' AS tool
                                FROM spans WHERE name LIKE 'execute_tool %'""").iloc[0]
    assert (span.declared, span.tool) == ("true", "math_factorial")
    offered = read_frame(store, "SELECT * FROM llm_calls")
    assert len(offered) == 1


@pytest.mark.parametrize("args, outcome", [({"number": 5}, "success"), ({"number": 6}, "failure")])
def test_text_protocol_calls_are_judged_too(db_path: Path, tmp_path: Path, args: dict,
                                            outcome: str) -> None:
    import json

    reply = f"Thought: compute it\nAction: math_factorial\nAction Input: {json.dumps(args)}"
    store = run(db_path, "react-text", [reply], tmp_path, native=False)
    ep = read_frame(store, "SELECT outcome, steps FROM episodes").iloc[0]
    assert (ep.outcome, ep.steps) == (outcome, 1)


def test_no_call_fails_a_tool_call_task(db_path: Path, tmp_path: Path) -> None:
    store = run(db_path, "react-tools", ["Final Answer: 120"], tmp_path)
    assert read_frame(store, "SELECT outcome FROM episodes").iloc[0].outcome == "failure"


@pytest.mark.parametrize("second, outcome", [(6, "success"), (5, "failure")])
def test_text_protocol_expresses_parallel_calls(db_path: Path, tmp_path: Path, second: int,
                                                outcome: str) -> None:
    """Two Action / Action Input pairs before the Observation are two calls of one step
    (BFCL's parallel category); before, the second pair broke the first call's JSON."""
    reply = ("Thought: both\nAction: math_factorial\nAction Input: {\"number\": 5}\n"
             f"Action: math_factorial\nAction Input: {{\"number\": {second}}}")
    store = run(db_path, "react-text", [reply], tmp_path, native=False, task="fact-5-and-6")
    ep = read_frame(store, "SELECT outcome, steps, tool_calls FROM episodes").iloc[0]
    assert (ep.outcome, ep.steps, ep.tool_calls) == (outcome, 1, 2)
    ids = read_frame(store, """SELECT attributes->>'$."gen_ai.tool.call.id"' AS id FROM spans
                               WHERE name LIKE 'execute_tool %' ORDER BY start_time""").id.tolist()
    assert ids == ["call-0", "call-0-2"]
