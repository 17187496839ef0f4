"""Text-protocol ReAct (Thought / Action / Action Input / Observation / Final Answer).

The whole episode is one growing transcript, sent as plain text: it works the same for chat
models and for base models with no chat template (which simply continue the text).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from shardscope.scaffolds.agents.base import EpisodeResult, Scaffold
from shardscope.scaffolds.agents.protocol import TextAction, parse_react
from shardscope.scaffolds.agents.runtime import Episode
from shardscope.scaffolds.types import Message, StepAction

STOP = ("\nObservation:", "Observation:")


class TextReAct(Scaffold):
    name = "react-text"
    description = "Text-protocol ReAct over one transcript; also works for base models."
    prompts: ClassVar[Mapping[str, str]] = {
        "instructions": (
            "Answer the question. You can use these tools:\n{tools}\n\n"
            "Use exactly this format:\n"
            "Thought: think about what to do next\n"
            "Action: the name of one tool\n"
            "Action Input: the tool's arguments as a JSON object\n"
            "(to call several tools at once, write several Action / Action Input pairs)\n"
            "Observation: the tool's result (it will be written for you)\n"
            "... (Thought / Action / Action Input / Observation can repeat)\n"
            "Thought: I now know the final answer\n"
            "Final Answer: the answer\n\n"
            "Begin!\n\n"
        ),
        "question": "Question: {task}\n",
        "cue": "Thought:",
        "observation": "\nObservation: {output}\n",
        "invalid": "\nObservation: Invalid format ({problem}). Write 'Action:' and 'Action Input:', "
        "or 'Final Answer:'.\n",
    }

    def parse_reply(self, reply: str, call_id: str) -> TextAction:
        """Parse a reply as the model wrote it after the scaffold's "Thought:" cue (so a reply
        that opens with "Action: ..." reads as the line "Thought: Action: ...")."""
        return parse_react(self.prompts["cue"] + " " + reply.rstrip(), call_id)

    async def run(self, episode: Episode) -> EpisodeResult:
        p = self.prompts
        transcript = p["instructions"].format(tools=episode.tools_text()) + p["question"].format(
            task=episode.task_prompt
        )
        fed_in = transcript
        while not episode.out_of_budget() and not episode.too_many_protocol_errors():
            async with episode.step(fed_in) as step:
                prompt = transcript + p["cue"]
                output = await step.generate([Message("user", prompt)], stop=STOP)
                reply = output.text.rstrip()
                parsed = self.parse_reply(reply, f"call-{step.index}")
                transcript = prompt + " " + reply.strip() + "\n"
                if parsed.final_answer is not None:
                    step.action(StepAction.final_answer(parsed.final_answer))
                    return episode.finish(parsed.final_answer)
                if not parsed.calls:
                    step.protocol_error(parsed.problem or "unparseable reply")
                    step.action(StepAction.protocol_error() if reply.strip() else StepAction.empty_reply())
                    fed_in = p["invalid"].format(problem=parsed.problem)
                else:
                    step.action(StepAction.tool_calls(list(parsed.calls)))
                    outcomes = [await step.run_tool(call) for call in parsed.calls]
                    if episode.ended_by_call:
                        return episode.finish(None)
                    fed_in = "".join(p["observation"].format(output=o.output) for o in outcomes)
                transcript += fed_in
        return episode.finish(None)
