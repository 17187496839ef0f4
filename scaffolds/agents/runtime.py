"""The runtime every scaffold loop uses: steps, model calls and tool calls, all traced.

A scaffold never touches spans itself. It opens ``async with episode.step(fed_in) as step``
for each loop iteration (span ``step {i}``), calls ``step.generate(...)`` (the model's
``chat`` span, under the step) and ``step.run_tool(call)`` (span ``execute_tool {tool}``),
and says what the iteration did with ``step.action(StepAction...)`` and, when the model broke
the protocol, ``step.protocol_error(...)``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from shardscope.scaffolds.agents.base import (
    EndReason,
    EpisodeResult,
    ScaffoldParams,
    TaskView,
    ToolBox,
)
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.types import (
    GenerationConfig,
    Message,
    ModelOutput,
    StepAction,
    ToolCall,
    ToolSpec,
)
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.spans import TracedSpan, Tracing


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call produced, as the scaffold feeds it back to the model."""

    ok: bool
    output: str
    error_type: str | None = None
    protocol_error: bool = False  # the model's fault (malformed, unknown or forbidden tool)


def describe_tool(spec: ToolSpec) -> str:
    """``- name: description`` and an example argument object built from the JSON schema."""
    properties = spec.parameters.get("properties", {})
    example = {
        name: f"<{prop.get('type', 'value')}: {prop.get('description', name)}>"
        for name, prop in properties.items()
    }
    return f"- {spec.name}: {spec.description}\n  arguments: {json.dumps(example)}"


@dataclass
class Episode:
    """One task attempt in progress: the model, the task instance, tools, budgets."""

    model: TracedModel
    tracing: Tracing
    instance: TaskView
    registry: ToolBox
    params: ScaffoldParams
    seed: int | None = None
    steps_done: int = 0
    output_tokens: int = 0
    protocol_errors: list[str] = field(default_factory=list)
    consecutive_protocol_errors: int = 0
    declared_calls: list[ToolCall] = field(default_factory=list)
    ended_by_call: bool = False  # a declared function was called and its call ends the episode

    @property
    def task_prompt(self) -> str:
        return self.instance.prompt

    @property
    def tool_specs(self) -> list[ToolSpec]:
        """The real tools' specs, then the task's declared functions (recorded, not run)."""
        declared = self.instance.declared
        names = declared.names()
        real = [t for t in self.instance.tools if t not in names]
        return [*self.registry.specs(real), *declared.functions]

    def tools_text(self) -> str:
        """The tools in words, each with an example of its arguments, for text protocols."""
        return "\n".join(describe_tool(spec) for spec in self.tool_specs) or "- (no tools)"

    def out_of_budget(self) -> bool:
        return (
            self.steps_done >= self.params.max_steps
            or self.output_tokens >= self.params.token_budget
        )

    def too_many_protocol_errors(self) -> bool:
        return self.consecutive_protocol_errors >= self.params.max_protocol_errors

    def generation_config(self, stop: Sequence[str] = ()) -> GenerationConfig:
        remaining = max(1, self.params.token_budget - self.output_tokens)
        return GenerationConfig(
            temperature=self.params.temperature,
            max_tokens=min(self.params.max_tokens_per_call, remaining),
            seed=self.seed,
            stop=tuple(stop),
        )

    def finish(
        self, answer: str | None, reason: EndReason | None = None, detail: str | None = None
    ) -> EpisodeResult:
        """The result when the loop stops: answered, broke protocol, or ran out of budget."""
        if reason is None:
            if self.ended_by_call:
                reason = "tool_call"
            elif answer is not None:
                reason = "final_answer"
            elif self.out_of_budget() and not self.too_many_protocol_errors():
                reason = "budget_exhausted"
            else:
                reason = "protocol_error"
        return EpisodeResult(
            final_answer=answer,
            end_reason=reason,
            steps=self.steps_done,
            output_tokens=self.output_tokens,
            protocol_errors=tuple(self.protocol_errors),
            detail=detail,
            declared_calls=tuple(self.declared_calls),
        )

    @asynccontextmanager
    async def step(self, fed_in: Any) -> AsyncIterator[Step]:
        """One loop iteration. ``fed_in`` is what this iteration gives the model anew."""
        index = self.steps_done
        self.steps_done += 1
        with self.tracing.inherit({A.STEP_INDEX: index}), self.tracing.span(
            f"step {index}", SpanType.STEP, {A.STEP_INDEX: index, A.STEP_INPUT: fed_in}
        ) as span:
            step = Step(self, span, index)
            yield step
            if not step.had_protocol_error:
                self.consecutive_protocol_errors = 0


class Step:
    """Handle for one loop iteration (see :meth:`Episode.step`)."""

    def __init__(self, episode: Episode, span: TracedSpan, index: int) -> None:
        self.episode = episode
        self.span = span
        self.index = index
        self.had_protocol_error = False

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        stop: Sequence[str] = (),
    ) -> ModelOutput:
        config = self.episode.generation_config(stop)
        output = await self.episode.model.generate(messages, tools, config)
        self.episode.output_tokens += output.usage.output_tokens or 0
        self.span.set(A.STEP_OUTPUT, output.text)
        return output

    def action(self, action: StepAction) -> None:
        """Record what this iteration did (one action per step)."""
        self.span.set(A.STEP_ACTION, action.to_json())

    def protocol_error(self, message: str) -> None:
        """The model broke the scaffold's protocol in this iteration."""
        self.had_protocol_error = True
        self.episode.protocol_errors.append(message)
        self.episode.consecutive_protocol_errors += 1
        self.span.set(A.STEP_PROTOCOL_ERROR, message)
        self.span.fail("protocol_error", message)

    async def run_tool(self, call: ToolCall) -> ToolOutcome:
        """Execute one tool call in its own span; the model's mistakes become observations."""
        with self.episode.tracing.span(
            f"execute_tool {call.name}",
            SpanType.TOOL_CALL,
            {
                A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL,
                A.GEN_AI_TOOL_NAME: call.name,
                A.GEN_AI_TOOL_CALL_ID: call.id,
                A.GEN_AI_TOOL_TYPE: "function",
                A.GEN_AI_TOOL_CALL_ARGUMENTS: call.arguments if call.ok else call.raw,
            },
        ) as span:
            declared = self.episode.instance.declared
            if declared.functions and call.ok and call.name not in self.episode.registry.names():
                return self._record_declared(call, span)
            problem = self._call_problem(call)
            if problem is not None:
                self.protocol_error(problem)
                text = f"Error: {problem}"
                span.set_many({A.TOOL_OK: False, A.GEN_AI_TOOL_CALL_RESULT: text})
                span.fail("protocol_error", problem)
                return ToolOutcome(False, text, "protocol_error", protocol_error=True)
            tool = self.episode.registry.get(call.name)
            result = await asyncio.to_thread(tool.run, call.arguments, self.episode.instance.tool_context)
            # The recorded result is what the model is shown: for a failed call, the error text.
            text = result.output if result.ok else (
                f"Error ({result.error_type}): {result.error_message or result.output}")
            span.set_many(
                {
                    A.GEN_AI_TOOL_CALL_RESULT: text,
                    A.TOOL_OK: result.ok,
                    A.TOOL_TRUNCATED: result.truncated,
                }
            )
            if not result.ok:
                span.set(A.TOOL_ERROR_MESSAGE, result.error_message)
                span.fail(result.error_type or "tool_error", result.error_message)
                return ToolOutcome(False, text, result.error_type)
            return ToolOutcome(True, text)

    def _record_declared(self, call: ToolCall, span: TracedSpan) -> ToolOutcome:
        """A call of a declared function (or of a name the task does not declare: a wrong
        answer, recorded for the checker, not a protocol error): recorded, never executed."""
        declared = self.episode.instance.declared
        self.episode.declared_calls.append(call)
        span.set(A.TOOL_DECLARED, True)
        if declared.after_call == "end":
            self.episode.ended_by_call = True
            span.set(A.TOOL_OK, True)
            return ToolOutcome(True, "")
        known = call.name in declared.names()
        output = declared.result if known else f"Error: unknown function {call.name!r}"
        span.set_many({A.GEN_AI_TOOL_CALL_RESULT: output, A.TOOL_OK: known})
        return ToolOutcome(known, output)

    def _call_problem(self, call: ToolCall) -> str | None:
        if not call.ok:
            return f"malformed tool call: {call.error}"
        known = self.episode.registry.names()
        if call.name not in known:
            return f"unknown tool {call.name!r}; tools: {', '.join(self.episode.instance.tools)}"
        if call.name not in self.episode.instance.tools:
            allowed = ", ".join(self.episode.instance.tools) or "none"
            return f"tool {call.name!r} is not available for this task (available: {allowed})"
        return None
