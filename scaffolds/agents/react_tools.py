"""Tool-calling ReAct: the model calls tools until it answers.

Native tool calls where the backend has them; otherwise the tools are described in the
system prompt and the model writes ``<tool_call>{json}</tool_call>`` blocks, which the
scaffold parses. A reply without a tool call is the final answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import ClassVar

from shardscope.scaffolds.agents.base import EpisodeResult, Scaffold, ScaffoldParams
from shardscope.scaffolds.agents.protocol import parse_tool_call_blocks, strip_final_answer
from shardscope.scaffolds.agents.runtime import Episode, Step
from shardscope.scaffolds.types import Message, ModelOutput, StepAction, ToolCall


@dataclass(frozen=True)
class ReactToolsParams(ScaffoldParams):
    max_tool_calls_per_step: int = 3


class ToolCallingReAct(Scaffold):
    name = "react-tools"
    description = "Tool-calling ReAct loop (native tool calls, or <tool_call> JSON in text)."
    Params = ReactToolsParams
    params: ReactToolsParams
    prompts: ClassVar[Mapping[str, str]] = {
        "system": (
            "You are a careful assistant solving a task with tools. Call a tool whenever you "
            "need to look something up or compute something. When you know the answer, reply "
            "with 'Final Answer: <answer>' and nothing else."
        ),
        "text_tools": (
            "You can call these tools:\n{tools}\n\nTo call a tool, reply with exactly one block "
            'like <tool_call>{{"name": "<tool name>", "arguments": {{...}}}}</tool_call> and '
            "wait for its result."
        ),
        "observation": "Result of {name}:\n{output}",
        "empty_reply": "You replied with nothing. Call a tool, or reply 'Final Answer: <answer>'.",
    }

    async def run(self, episode: Episode) -> EpisodeResult:
        native = episode.model.capabilities.tools
        system = self.prompts["system"]
        if not native:
            system += "\n\n" + self.prompts["text_tools"].format(tools=episode.tools_text())
        messages = _opening(episode, system)
        fed_in = [m.to_genai() for m in messages]
        while not episode.out_of_budget() and not episode.too_many_protocol_errors():
            async with episode.step(fed_in) as step:
                output = await step.generate(messages, episode.tool_specs if native else ())
                calls = self.parse_calls(output, native, episode.instance.tools, f"call-{step.index}")
                messages.append(Message("assistant", output.text, tool_calls=tuple(calls) if native else ()))
                if not calls:
                    answer = strip_final_answer(output.text)
                    if answer:
                        step.action(StepAction.final_answer(answer))
                        return episode.finish(answer)
                    step.protocol_error("empty reply: neither a tool call nor an answer")
                    step.action(StepAction.empty_reply())
                    new = [Message("user", self.prompts["empty_reply"])]
                else:
                    step.action(StepAction.tool_calls(calls))
                    new = [await self._observe(step, call, native) for call in calls]
                    if episode.ended_by_call:
                        return episode.finish(None)
                messages.extend(new)
                fed_in = [m.to_genai() for m in new]
        return episode.finish(None)

    def parse_calls(self, output: ModelOutput, native: bool, tools: Collection[str],
                    id_prefix: str) -> list[ToolCall]:
        """The tool calls of one reply (native ones, or ``<tool_call>`` blocks in its text),
        at most ``max_tool_calls_per_step``; none means the reply is the final answer."""
        calls = list(output.tool_calls) if native else parse_tool_call_blocks(output.text, tools, id_prefix)
        return calls[: self.params.max_tool_calls_per_step]

    async def _observe(self, step: Step, call: ToolCall, native: bool) -> Message:
        outcome = await step.run_tool(call)
        if native:
            return Message("tool", outcome.output, tool_call_id=call.id, name=call.name)
        text = self.prompts["observation"].format(name=call.name or "?", output=outcome.output)
        return Message("user", text)


def _opening(episode: Episode, system: str) -> list[Message]:
    if episode.model.capabilities.system_prompt:
        return [Message("system", system), Message("user", episode.task_prompt)]
    return [Message("user", f"{system}\n\n{episode.task_prompt}")]
