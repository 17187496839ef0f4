"""The types every backend, tool and scaffold shares: messages, tool specs and calls,
generation settings, streamed chunks and the normalized model output.

They are deliberately provider-neutral; each backend module translates them to and from its
wire format and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, description, JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def as_json_schema_tool(self) -> dict[str, Any]:
        """The OpenAI-style function tool dict (also what GenAI's tool.definitions holds)."""
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
