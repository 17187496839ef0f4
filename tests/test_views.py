"""The public views over spans emitted through the real SDK, in the shapes the runner emits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shardscope.config.catalog import Price
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.errors import ServerError
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.types import Message, ToolCall
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store


async def _nosleep(_: float) -> None:
    return None


@pytest.fixture
def store(db_path: Path) -> Store:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    backend = ScriptedBackend(
        model="toy-1",
        responses=[
            Scripted(tool_calls=(ToolCall("c1", "calculator", {"expression": "2+2"}),)),
            ServerError("boom", status_code=500),
            "The answer is 4",
        ],
    )
    model = TracedModel(backend, tracing, model_id="toy", price=Price(1.0, 2.0), sleep=_nosleep)
    run = {A.RUN_ID: "run-1"}
    with tracing.inherit(run):
        with tracing.span("run start", SpanType.RUN_START, {A.RUN_PLANNED_EPISODES: 2}):
            pass
        with tracing.span("run run-1", SpanType.RUN, {A.RUN_STATUS: "finished"}):
            with tracing.inherit({A.EPISODE_ID: "ep-1", A.MODEL_ID: "toy"}):
                with tracing.span(
                    "invoke_agent react",
                    SpanType.EPISODE,
                    {A.SUITE_NAME: "arith", A.TASK_ID: "t1", A.SCAFFOLD_NAME: "react",
                     A.SCAFFOLD_HASH: "abc123", A.SEED: 7, A.GEN_AI_PROVIDER_NAME: "scripted"},
                ) as episode:
                    for step in range(2):
                        with tracing.inherit({A.STEP_INDEX: step}):
                            with tracing.span(f"step {step}", SpanType.STEP) as s:
                                out = asyncio.run(model.generate([Message("user", "2+2?")]))
                                s.set(A.STEP_OUTPUT, out.text)
                                if out.tool_calls:
                                    s.set(A.STEP_ACTION, {"type": "tool", "tool": "calculator"})
                                    with tracing.span("execute_tool calculator", SpanType.TOOL_CALL,
                                                      {A.GEN_AI_TOOL_NAME: "calculator",
                                                       A.GEN_AI_TOOL_CALL_ARGUMENTS: {"expression": "2+2"}}) as t:
                                        t.set(A.GEN_AI_TOOL_CALL_RESULT, "4")
                                else:
                                    s.set(A.STEP_ACTION, {"type": "final", "answer": out.text})
                    episode.set_many({A.EPISODE_OUTCOME: "success", A.EPISODE_SCORE: 1.0,
                                      A.EPISODE_FINAL_ANSWER: "4", A.EPISODE_STEPS: 2})
    tracing.shutdown()
    return Store(db_path)


def test_episodes_view(store: Store) -> None:
    row = read_frame(store, "SELECT * FROM episodes").iloc[0]
    assert (row.suite, row.task_id, row.scaffold, row.scaffold_hash, row.model) == (
        "arith", "t1", "react", "abc123", "toy")
    assert (row.seed, row.outcome, row.score, row.steps) == (7, "success", 1.0, 2)
    assert (row.llm_calls, row.tool_calls, row.run_id) == (2, 1, "run-1")
    assert row.input_tokens == 2 and row.output_tokens == 4  # one word in per call; 4 out
    assert row.cost_usd == pytest.approx((2 * 1.0 + 4 * 2.0) / 1e6)


def test_steps_and_tool_calls_views(store: Store) -> None:
    steps = read_frame(store, "SELECT * FROM steps ORDER BY step_index")
    assert list(steps.action_type) == ["tool", "final"]
    assert steps.action_tool[0] == "calculator" and steps.action_tool.isna()[1]
    assert list(steps.llm_calls) == [1, 1] and list(steps.tool_calls) == [1, 0]
    tools = read_frame(store, "SELECT * FROM tool_calls").iloc[0]
    assert (tools.tool_name, tools.result, bool(tools.ok), tools.step_index) == ("calculator", "4", True, 0)
    assert '"expression":"2+2"' in tools.arguments


def test_llm_calls_attempts_tokens_and_messages(store: Store) -> None:
    calls = read_frame(store, "SELECT * FROM llm_calls ORDER BY step_index")
    assert list(calls.attempts) == [1, 2]
    assert list(calls.request_model) == ["toy-1", "toy-1"]
    attempts = read_frame(store, "SELECT * FROM llm_attempts")
    assert len(attempts) == 1
    assert (attempts.error_type[0], attempts.status_code[0], attempts.step_index[0]) == ("server_error", 500, 1)
    tokens = read_frame(store, "SELECT * FROM token_events WHERE step_index = 1 ORDER BY token_index")
    assert "".join(tokens.token) == "The answer is 4"
    assert list(tokens.token_index) == [0, 1, 2, 3]
    assert (tokens.offset_ms >= 0).all()
    messages = read_frame(store, "SELECT * FROM messages ORDER BY step_index, direction, position")
    assert set(messages.direction) == {"input", "output"}
    assert messages[messages.direction == "input"].text.tolist() == ["2+2?", "2+2?"]
    out = messages[(messages.direction == "output") & (messages.step_index == 1)].iloc[0]
    assert (out.role, out.text, out.finish_reason) == ("assistant", "The answer is 4", "stop")


def test_runs_view(store: Store) -> None:
    run = read_frame(store, "SELECT * FROM runs").iloc[0]
    assert (run.run_id, run.status, run.planned_episodes, run.completed_episodes, run.successes) == (
        "run-1", "finished", 2, 1, 1)


ATTEMPT_VIEWS = ("steps", "llm_calls", "tool_calls", "messages", "token_events", "llm_attempts")


def _unfinished_attempt(tracing, model: TracedModel, episode_id: str) -> None:
    """Spans of an attempt whose episode span never ended (the runner abandoned it)."""
    with tracing.inherit({A.RUN_ID: "run-2", A.EPISODE_ID: episode_id, A.MODEL_ID: "toy"}):
        with tracing.inherit({A.STEP_INDEX: 0}):
            with tracing.span("step 0", SpanType.STEP):
                asyncio.run(model.generate([Message("user", "2+2?")]))
                with tracing.span("execute_tool calculator", SpanType.TOOL_CALL,
                                  {A.GEN_AI_TOOL_NAME: "calculator"}):
                    pass


def test_abandoned_attempts_are_left_out_and_running_ones_kept(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    backend = ScriptedBackend(model="toy-1", responses=[ServerError("boom", status_code=500), "4",
                                                        ServerError("boom", status_code=500), "4"])
    model = TracedModel(backend, tracing, model_id="toy", sleep=_nosleep)
    _unfinished_attempt(tracing, model, "gone")
    _unfinished_attempt(tracing, model, "live")
    with tracing.inherit({A.RUN_ID: "run-2"}), tracing.span("abandoned_episode gone", SpanType.ABANDONED_EPISODE,
                      {A.EPISODE_ID: "gone"}):
        pass
    tracing.shutdown()
    store = Store(db_path)
    for view in ATTEMPT_VIEWS:
        ids = set(read_frame(store, f"SELECT DISTINCT episode_id FROM {view}").episode_id)
        assert ids == {"live"}, view  # a live episode's steps are watched before it ends
    raw = read_frame(store, "SELECT count(*) AS n FROM spans WHERE episode_id = 'gone'").n[0]
    assert raw == 4  # step, chat, tool, marker: nothing is deleted
    assert len(read_frame(store, "SELECT * FROM episodes")) == 0


def test_spans_outside_any_episode_stay_in_the_views(db_path: Path) -> None:
    # e.g. spans another OpenTelemetry SDK sent to `shardscope collect`: no episode id at all
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    model = TracedModel(ScriptedBackend(model="toy-1", responses=["4"]), tracing, model_id="toy")
    asyncio.run(model.generate([Message("user", "2+2?")]))
    with tracing.span("abandoned_episode x", SpanType.ABANDONED_EPISODE, {A.EPISODE_ID: "x"}):
        pass
    tracing.shutdown()
    calls = read_frame(Store(db_path), "SELECT episode_id FROM llm_calls")
    assert len(calls) == 1 and calls.episode_id.isna().all()
