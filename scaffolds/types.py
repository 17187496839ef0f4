"""The types every backend, tool and scaffold shares: messages, tool specs and calls,
generation settings, streamed chunks, the normalized model output, and what a scaffold step
did (the step action the scaffolds write and the analysis reads back).

They are deliberately provider-neutral; each backend module translates them to and from its
wire format and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from shardscope.config.errors import StoreError

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, description, JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def as_tool_definition(self) -> dict[str, Any]:
        """This tool as one item of GenAI's ``gen_ai.tool.definitions`` (the flat shape)."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters}

    def as_json_schema_tool(self) -> dict[str, Any]:
        """The OpenAI-style function tool dict (the wire shape of OpenAI's ``tools``)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model made. ``error`` is set when it could not be parsed."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw: str | None = None  # the text the call was parsed from, when it was text
    error: str | None = None  # malformed: why (the call is kept, never dropped)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Message:
    """One chat message. Assistant messages may carry tool calls; tool messages answer one."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None  # tool name on a tool message

    def to_genai(self) -> dict[str, Any]:
        """This message in the GenAI semantic conventions' JSON shape (role + parts)."""
        parts: list[dict[str, Any]] = []
        if self.role == "tool":
            parts.append(
                {"type": "tool_call_response", "id": self.tool_call_id, "response": self.content}
            )
        elif self.content:
            parts.append({"type": "text", "content": self.content})
        for call in self.tool_calls:
            parts.append(
                {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
            )
        return {"role": self.role, "parts": parts}


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling and budget settings of one call. None means the backend's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    timeout_s: float = 120.0


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float


@dataclass(frozen=True)
class StreamChunk:
    """One streamed piece of output text (usually one token)."""

    text: str
    logprob: float | None = None
    top_logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class ModelOutput:
    """The normalized result of one model call, with the raw request and response kept."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    response_model: str | None = None
    response_id: str | None = None
    tokens: tuple[StreamChunk, ...] = ()  # per-token detail when streamed or logprobs asked
    raw_request: dict[str, Any] | None = None
    raw_response: Any = None

    @property
    def message(self) -> Message:
        """The assistant message to append to the conversation."""
        return Message("assistant", self.text, tool_calls=self.tool_calls)

    @property
    def malformed_tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(c for c in self.tool_calls if not c.ok)


# --- what a scaffold step did ------------------------------------------------------------------
ActionKind = Literal["tool", "final", "plan", "note", "none", "error"]
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)


@dataclass(frozen=True)
class ActionCall:
    """One tool call as a step action records it: the tool's name and its arguments."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": dict(self.arguments)}


@dataclass(frozen=True)
class StepAction:
    """What one scaffold step did, stored as the step span's ``shardscope.step.action``.

    ``tool``: the step called ``calls`` (one or more, in order); ``final``: it answered
    ``answer``; ``plan`` / ``note``: the model wrote ``text`` (a plan, or the result of a
    plan step); ``none``: the model replied with nothing; ``error``: the reply broke the
    scaffold's protocol (the message itself is the step's ``shardscope.step.protocol_error``,
    which is redacted; the action carries none of it). Build one with the class methods.
    """

    kind: ActionKind
    calls: tuple[ActionCall, ...] = ()
    answer: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"unknown step action kind {self.kind!r}; kinds: {', '.join(ACTION_KINDS)}")
        if (self.kind == "tool") != bool(self.calls):
            raise ValueError("a tool action has one or more calls, and only a tool action has calls")
        if (self.kind == "final") != (self.answer is not None):
            raise ValueError("a final action has an answer, and only a final action has one")
        if (self.kind in ("plan", "note")) != (self.text is not None):
            raise ValueError("a plan or note action has text, and only those have text")

    @classmethod
    def tool_calls(cls, calls: Iterable[ToolCall]) -> StepAction:
        return cls("tool", calls=tuple(ActionCall(c.name, c.arguments) for c in calls))

    @classmethod
    def final_answer(cls, answer: str) -> StepAction:
        return cls("final", answer=answer)

    @classmethod
    def plan(cls, text: str) -> StepAction:
        return cls("plan", text=text)

    @classmethod
    def note(cls, text: str) -> StepAction:
        return cls("note", text=text)

    @classmethod
    def empty_reply(cls) -> StepAction:
        return cls("none")

    @classmethod
    def protocol_error(cls) -> StepAction:
        return cls("error")

    @property
    def tool(self) -> str | None:
        """The first call's tool (what the ``steps`` view's ``action_tool`` shows)."""
        return self.calls[0].tool if self.calls else None

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in the span: ``type`` always; ``tool``, ``arguments`` (the
        first call's) and ``calls`` for a tool action; ``answer``; ``plan`` or ``text``."""
        out: dict[str, Any] = {"type": self.kind}
        if self.calls:
            out |= {"tool": self.calls[0].tool, "arguments": dict(self.calls[0].arguments),
                    "calls": [c.to_json() for c in self.calls]}
        if self.answer is not None:
            out["answer"] = self.answer
        if self.text is not None:
            out["plan" if self.kind == "plan" else "text"] = self.text
        return out

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | str | None) -> StepAction | None:
        """The action stored as ``value`` (a JSON object or its text); None when the step
        recorded none. Reads every shape shardscope has written: tool actions stored before
        ``calls`` existed hold only ``tool`` and ``arguments``."""
        if value is None or value == "":
            return None
        data = json.loads(value) if isinstance(value, str) else value
        if not isinstance(data, Mapping):
            raise StoreError(f"a stored step action is not a JSON object: {str(value)[:120]!r}")
        kind = data.get("type")
        if kind not in ACTION_KINDS:
            raise StoreError(f"a stored step action has unknown type {kind!r} (known: "
                             f"{', '.join(ACTION_KINDS)}); was the store written by a newer shardscope?")
        if kind == "tool":
            calls = data.get("calls") or [{"tool": data.get("tool"), "arguments": data.get("arguments")}]
            return cls("tool", calls=tuple(ActionCall(str(c.get("tool") or ""), c.get("arguments") or {})
                                           for c in calls))
        if kind == "final":
            return cls("final", answer=str(data.get("answer") or ""))
        if kind in ("plan", "note"):
            return cls(kind, text=str(data.get("plan" if kind == "plan" else "text") or ""))
        return cls(cast(ActionKind, kind))
