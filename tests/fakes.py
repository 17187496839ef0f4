"""Small stand-ins for unit tests of the scaffolds and runner (the real tools and suites have
their own tests): one calculator-like tool, one task, one suite, a checker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.runner import Resources
from shardscope.scaffolds.tasks.model import Check as RealCheck
from shardscope.scaffolds.tasks.model import DeclaredTools
from shardscope.scaffolds.types import ToolSpec


@dataclass(frozen=True)
class Result:
    ok: bool
    output: str
    error_type: str | None = None
    error_message: str | None = None
    truncated: bool = False


class AddTool:
    spec = ToolSpec("add", "Add two integers a and b.", {
        "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"]})

    def run(self, arguments: dict[str, Any], ctx: Any) -> Result:
        try:
            return Result(True, str(int(arguments["a"]) + int(arguments["b"])))
        except (KeyError, TypeError, ValueError) as exc:
            return Result(False, "", "bad_arguments", f"add needs integers a and b ({exc})")


class Registry:
    def __init__(self) -> None:
        self.tools = {"add": AddTool()}

    def names(self) -> list[str]:
        return list(self.tools)

    def get(self, name: str) -> Any:
        return self.tools[name]

    def specs(self, names: list[str]) -> list[ToolSpec]:
        return [self.tools[n].spec for n in names]


@dataclass(frozen=True)
class Shard:
    name: str
    kind: str = "fact"
    replacement: str | None = "7"  # Task.instantiate replaces a shard by "<name> is 7."


@dataclass(frozen=True)
class Instance:
    prompt: str
    tools: tuple[str, ...] = ("add",)
    tool_context: Any = None
    shards: tuple[str, ...] = ("a", "b")
    ablation: Any = None
    declared: Any = field(default_factory=DeclaredTools)


@dataclass(frozen=True)
class Task:
    id: str
    answer: str = "5"
    shards: tuple[Shard, ...] = (Shard("a"), Shard("b"))
    check: Any = field(default_factory=lambda: RealCheck("exact"))

    def instantiate(self, workdir: Path, ablation: Any = None) -> Instance:
        facts = {"a": "a is 2.", "b": "b is 3."}
        if ablation is not None:
            facts[ablation.shard] = "" if ablation.mode == "removed" else f"{ablation.shard} is 7."
        return Instance(f"{facts['a']} {facts['b']} What is a + b?", ablation=ablation)


@dataclass(frozen=True)
class NamedTask(Task):
    """A toy task whose prompt names it (``Task t0: a is 2. ...``), so a policy can tell tasks
    apart; its shards a and b are removed or replaced (by 7) like :class:`Task`'s."""

    def instantiate(self, workdir: Path, ablation: Any = None) -> Instance:
        plain = super().instantiate(workdir, ablation)
        return Instance(f"Task {self.id}: {plain.prompt}", ablation=ablation)


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: tuple[Task, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Check:
    outcome: str
    score: float
    detail: str


def check(task: Task, answer: str | None, instance: Any, calls: Any = ()) -> Check:
    ok = answer is not None and answer.strip().rstrip(".").endswith(task.answer)
    return Check("success" if ok else "failure", 1.0 if ok else 0.0, f"expected {task.answer}")


def resources(models: dict[str, TracedModel], tasks: int = 2) -> Resources:
    suite = Suite("toy", tuple(Task(f"t{i}") for i in range(tasks)))
    return Resources(
        suites={"toy": suite},
        registry=Registry(),
        open_model=lambda model_id: models[model_id],
        provider_of=lambda model_id: "scripted",
        check=check,
        known_models=lambda: sorted(models),
    )
