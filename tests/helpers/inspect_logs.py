"""Real Inspect AI logs for the import tests: a tiny task with a tool, run by the real
``inspect_ai`` on its ``mockllm`` provider (no network), written into a directory.

The task is ``toy`` with samples t0, t1, t2 (the UI fixture's suite and tasks, so imported
episodes pair with shardscope's own on the same tasks). Two models:

- ``mockllm/adder``: calls ``add(2, 3)``, then answers with its result: correct everywhere;
  two epochs, written as a ``.eval`` log;
- ``mockllm/guesser``: t0 like adder; t1 answers 6 without a tool (incorrect); t2 calls the
  tool with an argument of the wrong type (a tool error), then its model call fails (the
  sample's error); one epoch, written as a ``.json`` log.

Usage: ``python -m tests.helpers.inspect_logs OUT_DIR`` (prints each log's path).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PROMPT = "Task {id}: a is 2. b is 3. What is a + b?"
TASKS = ("t0", "t1", "t2")
USAGE_PER_MESSAGE = 10


def main(out: Path) -> int:
    from inspect_ai import Task, eval, task
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageTool, ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate, use_tools
    from inspect_ai.tool import tool

    @tool
    def add() -> Any:
        async def execute(a: int, b: int) -> str:
            """Add two integers a and b.

            Args:
              a: the first
              b: the second
            """
            return str(int(a) + int(b))

        return execute

    @task
    def toy() -> Task:
        return Task(dataset=[Sample(id=t, input=PROMPT.format(id=t), target="5") for t in TASKS],
                    solver=[use_tools(add()), generate()], scorer=includes())

    def task_of(messages: list[Any]) -> str:
        return str(messages[0].text).split()[1].rstrip(":")

    def usage(output: Any, messages: list[Any]) -> Any:
        # mockllm counts tokens with tiktoken, which downloads its encoding: give usage instead
        output.usage = ModelUsage(input_tokens=USAGE_PER_MESSAGE * len(messages),
                                  output_tokens=3, total_tokens=USAGE_PER_MESSAGE * len(messages) + 3)
        return output

    def adder(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        last = messages[-1]
        if isinstance(last, ChatMessageTool):
            return usage(ModelOutput.from_content("mockllm/adder", f"Final Answer: {last.text}"),
                         messages)
        return usage(ModelOutput.for_tool_call("mockllm/adder", "add", {"a": 2, "b": 3}), messages)

    def guesser(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        name = task_of(messages)
        last = messages[-1]
        if name == "t1":
            return usage(ModelOutput.from_content("mockllm/guesser", "Final Answer: 6"), messages)
        if name == "t2" and isinstance(last, ChatMessageTool):
            raise RuntimeError("the guesser's backend went away")
        if isinstance(last, ChatMessageTool):
            return usage(ModelOutput.from_content("mockllm/guesser", f"Final Answer: {last.text}"),
                         messages)
        arguments: dict[str, Any] = {"a": 2, "b": 3} if name == "t0" else {"a": "two", "b": 3}
        return usage(ModelOutput.for_tool_call("mockllm/guesser", "add", arguments), messages)

    for model, policy, epochs, fmt in (("mockllm/adder", adder, 2, "eval"),
                                       ("mockllm/guesser", guesser, 1, "json")):
        logs = eval(toy(), model=get_model(model, custom_outputs=policy), epochs=epochs,
                    log_dir=str(out), log_format=fmt, display="none", fail_on_error=False,
                    max_retries=1)
        print(logs[0].location, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
