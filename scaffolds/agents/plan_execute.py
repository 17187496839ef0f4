"""Plan-and-execute: plan, act on each plan step (one tool call or a note), then re-plan or
answer. Every model call is one step of the episode."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from shardscope.scaffolds.agents.base import EpisodeResult, Scaffold, ScaffoldParams
from shardscope.scaffolds.agents.protocol import parse_tool_call_blocks, strip_final_answer
from shardscope.scaffolds.agents.runtime import Episode
from shardscope.scaffolds.types import Message, StepAction

_ITEM = re.compile(r"^\s*(?:\d+[.):]|[-*•])\s*(.+)$", re.MULTILINE)
_FINAL = re.compile(r"final\s*answer\s*[:：]", re.IGNORECASE)


@dataclass(frozen=True)
class PlanParams(ScaffoldParams):
    max_steps: int = 8
    max_plan_items: int = 3


class PlanAndExecute(Scaffold):
    name = "plan-execute"
    description = "Plan, execute each plan step with at most one tool call, re-plan or answer."
    Params = PlanParams
    params: PlanParams
    prompts: ClassVar[Mapping[str, str]] = {
        "system": "You are a careful problem solver who plans before acting.",
        "plan": (
            "Task: {task}\n\nTools you will be able to use:\n{tools}\n\n"
            "Write a short numbered plan of at most {n} steps to solve the task. Do not solve "
            "it yet."
        ),
        "act": (
            "Task: {task}\n\nPlan:\n{plan}\n\nFindings so far:\n{findings}\n\n"
            "Carry out plan step {index}: {item}\n{how}"
        ),
        "act_native": "Call one tool if it helps, or state the result of this step in one sentence.",
        "act_text": (
            'To call a tool, reply with <tool_call>{{"name": "<tool>", "arguments": {{...}}}}'
            "</tool_call>; otherwise state the result of this step in one sentence."
        ),
        "replan": (
            "Task: {task}\n\nPlan:\n{plan}\n\nFindings:\n{findings}\n\n"
            "If the findings answer the task, reply 'Final Answer: <answer>'. Otherwise reply "
            "with a revised numbered plan of at most {n} steps."
        ),
    }

    async def run(self, episode: Episode) -> EpisodeResult:
        p, n = self.prompts, self.params.max_plan_items
        task, tools = episode.task_prompt, episode.tools_text()
        plan_text = await self._ask(episode, p["plan"].format(task=task, tools=tools, n=n), "plan")
        if plan_text is None:
            return episode.finish(None)
        findings: list[str] = []
        while not episode.out_of_budget():
            for index, item in enumerate(_plan_items(plan_text, n), start=1):
                if episode.out_of_budget() or episode.too_many_protocol_errors():
                    return episode.finish(None)
                findings.append(await self._act(episode, task, plan_text, findings, index, item))
                if episode.ended_by_call:
                    return episode.finish(None)
            if episode.out_of_budget():
                break
            prompt = p["replan"].format(task=task, plan=plan_text, findings=_numbered(findings), n=n)
            async with episode.step(prompt) as step:
                output = await step.generate(_messages(episode, prompt))
                if _FINAL.search(output.text):
                    answer = strip_final_answer(output.text)
                    step.action(StepAction.final_answer(answer))
                    return episode.finish(answer)
                step.action(StepAction.plan(output.text.strip()))
                plan_text = output.text
        return episode.finish(None)

    async def _ask(self, episode: Episode, prompt: str, kind: str) -> str | None:
        async with episode.step(prompt) as step:
            output = await step.generate(_messages(episode, prompt))
            if not output.text.strip():
                step.protocol_error(f"empty {kind}")
                step.action(StepAction.empty_reply())
                return None
            step.action(StepAction.plan(output.text.strip()))
            return output.text

    async def _act(
        self, episode: Episode, task: str, plan: str, findings: list[str], index: int, item: str
    ) -> str:
        native = episode.model.capabilities.tools
        how = self.prompts["act_native" if native else "act_text"]
        prompt = self.prompts["act"].format(
            task=task, plan=plan, findings=_numbered(findings) or "(none yet)", index=index,
            item=item, how=how,
        )
        async with episode.step(prompt) as step:
            output = await step.generate(_messages(episode, prompt), episode.tool_specs if native else ())
            calls = list(output.tool_calls) if native else parse_tool_call_blocks(
                output.text, episode.instance.tools, f"call-{step.index}"
            )
            if not calls:
                note = output.text.strip()
                if not note:
                    step.protocol_error("empty reply to a plan step")
                step.action(StepAction.note(note) if note else StepAction.empty_reply())
                return f"step {index}: {note or '(nothing)'}"
            call = calls[0]
            step.action(StepAction.tool_calls([call]))
            outcome = await step.run_tool(call)
            return f"step {index}: {call.name} -> {outcome.output}"


def _plan_items(text: str, limit: int) -> list[str]:
    items = [m.group(1).strip() for m in _ITEM.finditer(text) if m.group(1).strip()]
    return (items or [text.strip()])[:limit]


def _numbered(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _messages(episode: Episode, prompt: str) -> list[Message]:
    if episode.model.capabilities.system_prompt:
        return [Message("system", PlanAndExecute.prompts["system"]), Message("user", prompt)]
    return [Message("user", PlanAndExecute.prompts["system"] + "\n\n" + prompt)]
