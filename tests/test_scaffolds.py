"""Every scaffold path with the scripted backend, asserted through spans and the views."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.agents.registry import get_scaffold
from shardscope.scaffolds.backends.base import Capabilities
from shardscope.scaffolds.backends.errors import AuthenticationError
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.types import StepAction, ToolCall
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes

TEXT_ONLY = Capabilities(tools=False, streaming=True, logprobs=False)


def run_one(db: Path, scaffold: str, responses: list, *, capabilities: Capabilities | None = None,
            params: dict | None = None) -> Store:
    tracing = setup_tracing(Settings(db=db), strict=True)
    backend = ScriptedBackend(model="toy-model", responses=responses)
    if capabilities is not None:
        backend.capabilities = capabilities
    model = TracedModel(backend, tracing, model_id="toy")
    spec = MatrixSpec(suites=("toy",), models=("toy",), scaffolds=(scaffold,),
                      scaffold_params={scaffold: params} if params else {})
    runner = Runner(tracing, fakes.resources({"toy": model}, tasks=1), progress=False)
    asyncio.run(runner.run(spec))
    tracing.shutdown()
    return Store(db)


def episode(store: Store):
    rows = read_frame(store, "SELECT * FROM episodes")
    assert len(rows) == 1
    return rows.iloc[0]


def test_react_tools_native_tool_call_then_answer(db_path: Path) -> None:
    store = run_one(db_path, "react-tools", [
        Scripted(tool_calls=(ToolCall("c1", "add", {"a": 2, "b": 3}),)),
        "Final Answer: 5",
    ])
    ep = episode(store)
    assert (ep.outcome, ep.score, ep.steps, ep.final_answer) == ("success", 1.0, 2, "5")
    assert ep.scaffold == "react-tools" and len(ep.scaffold_hash) == 64
    steps = read_frame(store, "SELECT * FROM steps ORDER BY step_index")
    assert list(steps.action_type) == ["tool", "final"]
    tools = read_frame(store, "SELECT * FROM tool_calls").iloc[0]
    assert (tools.tool_name, tools.result, bool(tools.ok), tools.call_id) == ("add", "5", True, "c1")
    messages = read_frame(store, "SELECT * FROM messages WHERE step_index = 1 AND direction = 'input'")
    assert "tool" in set(messages.role)  # the tool result was fed back as a tool message


def test_react_tools_text_mode_parses_tool_call_blocks(db_path: Path) -> None:
    store = run_one(db_path, "react-tools", [
        'Let me add. <tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>',
        "Final Answer: 5",
    ], capabilities=TEXT_ONLY)
    assert episode(store).outcome == "success"
    assert read_frame(store, "SELECT result FROM tool_calls").result[0] == "5"
    system = read_frame(store, "SELECT system_instructions FROM llm_calls LIMIT 1").iloc[0, 0]
    assert "<tool_call>" in system  # tools described in words for a model without native calls


def test_malformed_and_unknown_tool_calls_are_protocol_errors(db_path: Path) -> None:
    store = run_one(db_path, "react-tools", [
        Scripted(tool_calls=(ToolCall("c1", "add", {}, raw='{"a": 2,', error="bad JSON"),)),
        Scripted(tool_calls=(ToolCall("c2", "multiply", {"a": 2}),)),
    ], params={"max_protocol_errors": 2})
    ep = episode(store)
    assert ep.outcome == "protocol_error" and ep.steps == 2
    assert "unknown tool 'multiply'" in ep.error
    steps = read_frame(store, "SELECT protocol_error, status_code FROM steps ORDER BY step_index")
    assert steps.protocol_error[0].startswith("malformed tool call") and set(steps.status_code) == {"ERROR"}
    tools = read_frame(store, "SELECT ok, error_type, arguments FROM tool_calls ORDER BY started_at")
    assert not tools.ok.any() and set(tools.error_type) == {"protocol_error"}
    assert tools.arguments[0] == '{"a": 2,'  # the raw text of the malformed call is kept


def test_each_step_stores_its_action_record(db_path: Path) -> None:
    store = run_one(db_path, "react-tools", [
        "",
        Scripted(tool_calls=(ToolCall("c1", "add", {"a": 2, "b": 3}), ToolCall("c2", "add", {"a": 1, "b": 1}))),
        "Final Answer: 5",
    ])
    steps = read_frame(store, "SELECT CAST(action AS VARCHAR) AS action, action_type, action_tool, "
                              "protocol_error FROM steps ORDER BY step_index")
    assert [StepAction.from_json(a) for a in steps.action] == [
        StepAction.empty_reply(),
        StepAction.tool_calls([ToolCall("c1", "add", {"a": 2, "b": 3}), ToolCall("c2", "add", {"a": 1, "b": 1})]),
        StepAction.final_answer("5"),
    ]
    assert list(steps.action_type) == ["none", "tool", "final"] and steps.action_tool[1] == "add"
    assert steps.protocol_error[0] == "empty reply: neither a tool call nor an answer"


def test_recovery_after_one_protocol_error(db_path: Path) -> None:
    store = run_one(db_path, "react-tools", [
        Scripted(tool_calls=(ToolCall("c1", "add", {}, raw="{", error="bad JSON"),)),
        Scripted(tool_calls=(ToolCall("c2", "add", {"a": 2, "b": 3}),)),
        "5",
    ])
    ep = episode(store)
    assert (ep.outcome, ep.steps) == ("success", 3)


def test_budget_exhausted_when_the_model_never_answers(db_path: Path) -> None:
    store = run_one(db_path, "react-tools",
                    [Scripted(tool_calls=(ToolCall(f"c{i}", "add", {"a": i, "b": 1}),)) for i in range(3)],
                    params={"max_steps": 3})
    ep = episode(store)
    assert (ep.outcome, ep.steps, ep.tool_calls) == ("budget_exhausted", 3, 3)


def test_backend_failure_is_an_error_outcome_not_a_crash(db_path: Path) -> None:
    store = run_one(db_path, "react-tools", [AuthenticationError("bad key")])
    ep = episode(store)
    assert ep.outcome == "error" and "bad key" in ep.error
    call = read_frame(store, "SELECT status_code, error_type FROM llm_calls").iloc[0]
    assert (call.status_code, call.error_type) == ("ERROR", "authentication_error")


def test_react_text_action_observation_final(db_path: Path) -> None:
    store = run_one(db_path, "react-text", [
        ' I should add.\nAction: add\nAction Input: {"a": 2, "b": 3}',
        " I now know the final answer\nFinal Answer: 5",
    ], capabilities=TEXT_ONLY)
    assert episode(store).outcome == "success"
    steps = read_frame(store, "SELECT step_index, input, action_tool FROM steps ORDER BY step_index")
    assert steps.action_tool[0] == "add"
    assert "Observation: 5" in steps.input[1]  # what step 1 was fed: the tool's observation
    prompt = read_frame(store, "SELECT input_messages FROM llm_calls ORDER BY started_at").iloc[1, 0]
    assert "Action Input:" in prompt and "Observation: 5" in prompt


def test_react_text_invalid_format_then_budget(db_path: Path) -> None:
    store = run_one(db_path, "react-text", ["I think it is five", "still rambling"],
                    params={"max_steps": 2, "max_protocol_errors": 5})
    ep = episode(store)
    assert ep.outcome == "budget_exhausted"
    steps = read_frame(store, "SELECT protocol_error, action_type FROM steps")
    assert all("no 'Action:' or 'Final Answer:'" in e for e in steps.protocol_error)
    assert list(steps.action_type) == ["error", "error"]  # text the protocol cannot read


def test_plan_execute_plans_acts_and_answers(db_path: Path) -> None:
    store = run_one(db_path, "plan-execute", [
        "1. Add a and b\n2. Report the sum",
        Scripted(tool_calls=(ToolCall("c1", "add", {"a": 2, "b": 3}),)),
        "The sum is 5.",
        "Final Answer: 5",
    ])
    ep = episode(store)
    assert (ep.outcome, ep.steps, ep.tool_calls) == ("success", 4, 1)
    kinds = read_frame(store, "SELECT action_type FROM steps ORDER BY step_index").action_type
    assert list(kinds) == ["plan", "tool", "note", "final"]


def test_scaffold_hash_changes_with_parameters_and_not_otherwise() -> None:
    a, b = get_scaffold("react-tools"), get_scaffold("react-tools")
    c = get_scaffold("react-tools", {"max_steps": 9})
    assert a.identity == b.identity != c.identity
    assert get_scaffold("react-text").identity != a.identity


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [({"max_stepz": 3}, "has no parameter 'max_stepz'"), ({"max_steps": "many"}, "should be int"),
     ({"max_steps": 0}, "must be >= 1")],
)
def test_bad_scaffold_parameters(overrides: dict, fragment: str) -> None:
    from shardscope.config.errors import ConfigError

    with pytest.raises(ConfigError, match=fragment):
        get_scaffold("react-tools", overrides)


def test_unknown_scaffold_lists_known_ones() -> None:
    from shardscope.config.errors import ConfigError

    with pytest.raises(ConfigError, match="known scaffolds: plan-execute, react-text, react-tools"):
        get_scaffold("reflexion")


def test_scaffold_hash_covers_the_text_tool_call_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    # protocol.py hands <tool_call> text to scaffolds/backends/text_tool_calls.py: a change
    # there changes what every scaffold does with a model's text, so it changes the hash.
    names = ("react-tools", "react-text", "plan-execute")
    before = {n: get_scaffold(n).identity for n in names}
    real = Path.read_text

    def edited(target: str):
        def read_text(self: Path, *args, **kwargs) -> str:
            text = real(self, *args, **kwargs)
            return text + "\n# edited\n" if self.name == target else text
        return read_text

    monkeypatch.setattr(Path, "read_text", edited("openai_chat.py"))  # not scaffold code
    assert {n: get_scaffold(n).identity for n in names} == before
    monkeypatch.setattr(Path, "read_text", edited("text_tool_calls.py"))
    after = {n: get_scaffold(n).identity for n in names}
    assert all(after[n] != before[n] for n in names)


# --- plan-execute beyond the happy path ----------------------------------------------------------
def step_rows(store: Store):
    return read_frame(store, "SELECT * FROM steps ORDER BY step_index")


def test_plan_execute_replans_and_keeps_its_findings(db_path: Path) -> None:
    store = run_one(db_path, "plan-execute", [
        "1. Find out what a is",
        "a is 2.",
        "1. Add a and b",  # no final answer: a revised plan
        Scripted(tool_calls=(ToolCall("c1", "add", {"a": 2, "b": 3}),)),
        "Final Answer: 5",
    ])
    ep = episode(store)
    assert (ep.outcome, ep.steps, ep.llm_calls, ep.tool_calls, ep.final_answer) == (
        "success", 5, 5, 1, "5")
    steps = step_rows(store)
    assert list(steps.action_type) == ["plan", "note", "plan", "tool", "final"]
    assert json.loads(steps.action[2])["plan"] == "1. Add a and b"
    # The act after the re-plan works on the new plan and still sees the earlier finding.
    assert "Plan:\n1. Add a and b" in steps.input[3] and "- step 1: a is 2." in steps.input[3]
    assert "Carry out plan step 1: Add a and b" in steps.input[3]
    assert "- step 1: add -> 5" in steps.input[4]  # the tool's result is a finding for the re-plan
    tool = read_frame(store, "SELECT * FROM tool_calls").iloc[0]
    assert (tool.step_index, tool.tool_name, tool.result, bool(tool.ok)) == (3, "add", "5", True)
    spans = read_frame(store, "SELECT s.step_index, s.name, count(l.span_id) AS calls FROM spans s "
                              "LEFT JOIN llm_calls l ON l.parent_span_id = s.span_id "
                              "WHERE s.span_type = 'step' GROUP BY ALL ORDER BY s.step_index")
    assert list(spans.name) == [f"step {i}" for i in range(5)] and set(spans.calls) == {1}
    parent = read_frame(store, "SELECT s.step_index FROM spans s JOIN tool_calls t "
                               "ON t.parent_span_id = s.span_id").step_index[0]
    assert parent == 3


def test_plan_execute_empty_plan_is_a_protocol_error(db_path: Path) -> None:
    store = run_one(db_path, "plan-execute", ["   "])
    ep = episode(store)
    assert (ep.outcome, ep.steps, ep.error, ep.final_answer) == (
        "protocol_error", 1, "empty plan", None)
    step = step_rows(store).iloc[0]
    assert (step.protocol_error, step.status_code) == ("empty plan", "ERROR")
    assert step.action_type == "none"  # an empty reply: every step records what it did


def test_plan_execute_broken_tool_calls_end_it_as_a_protocol_error(db_path: Path) -> None:
    store = run_one(db_path, "plan-execute", [
        "1. Add a and b\n2. Check the sum\n3. Report it",
        '<tool_call>{"name": "add", "arguments": {"a": 2,</tool_call>',
        '<tool_call>{"name": "multiply", "arguments": {"a": 2, "b": 3}}</tool_call>',
        "never asked: two protocol errors in a row end the episode",
    ], capabilities=TEXT_ONLY)
    ep = episode(store)
    assert (ep.outcome, ep.steps, ep.tool_calls, ep.tool_errors) == ("protocol_error", 3, 2, 2)
    assert "malformed tool call" in ep.error and "unknown tool 'multiply'" in ep.error
    steps = step_rows(store)
    assert list(steps.action_type) == ["plan", "tool", "tool"]
    assert steps.protocol_error[1].startswith("malformed tool call")
    assert steps.protocol_error[2].startswith("unknown tool 'multiply'")
    assert list(steps.status_code) == ["UNSET", "ERROR", "ERROR"]
    tools = read_frame(store, "SELECT * FROM tool_calls ORDER BY step_index")
    assert list(tools.tool_name) == ["add", "multiply"] and not tools.ok.any()
    assert set(tools.error_type) == {"protocol_error"}
    assert tools.arguments[0] == '{"name": "add", "arguments": {"a": 2,'  # the raw text is kept


def test_plan_execute_budget_exhausted_mid_plan(db_path: Path) -> None:
    store = run_one(db_path, "plan-execute", [
        "1. Read a\n2. Read b\n3. Add them",
        "a is 2.",
        "b is 3.",
        "never asked: the third step is over the budget",
    ], params={"max_steps": 3})
    ep = episode(store)
    assert (ep.outcome, ep.steps, ep.llm_calls, ep.tool_calls, ep.final_answer) == (
        "budget_exhausted", 3, 3, 0, None)
    steps = step_rows(store)
    assert list(steps.action_type) == ["plan", "note", "note"] and steps.protocol_error.isna().all()
    assert "Carry out plan step 2: Read b" in steps.input[2]
    assert "- step 1: a is 2." in steps.input[2]
