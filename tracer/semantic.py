"""Spans from other instrumentations → the names shardscope's views read.

shardscope's own spans say what they are (``shardscope.span.type``). A span from anything
else (the OpenTelemetry GenAI conventions, current or deprecated, OpenInference, OpenLLMetry)
is mapped when ``shardscope collect`` receives it: :func:`map_span` returns the attributes to
*add* (never to replace) so that the views find it: its span type, model, provider, tokens,
messages in the GenAI ``parts[]`` shape, finish reasons, tool arguments, time to first token.
What was added is listed in ``shardscope.mapped.keys`` and the convention it was read from in
``shardscope.mapped.convention``: the source attributes stay as they came.

What one span cannot say (which episode it belongs to; whether a trace root is an episode;
the episode's model when its agent span names none; content sent as OTLP log records) is
settled per trace after each write: :mod:`shardscope.tracer.episodes`. docs/attributes.md
has the table, source attribute → column, for each convention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shardscope.tracer import attributes as A

# --- source names (other conventions) -----------------------------------------------------
GEN_AI_SYSTEM = "gen_ai.system"  # deprecated for gen_ai.provider.name
GEN_AI_AGENT_VERSION = "gen_ai.agent.version"
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # deprecated
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # deprecated
GEN_AI_PROMPT_PREFIX = "gen_ai.prompt."  # deprecated: gen_ai.prompt.N.role|content|...
GEN_AI_COMPLETION_PREFIX = "gen_ai.completion."
OI_SPAN_KIND = "openinference.span.kind"
OI_MODEL_NAME = "llm.model_name"
OI_REQUEST_MODEL = "llm.request.model_name"
OI_RESPONSE_MODEL = "llm.response.model_name"
OI_PROVIDER = "llm.provider"
OI_SYSTEM = "llm.system"
OI_PROMPT_TOKENS = "llm.token_count.prompt"
OI_COMPLETION_TOKENS = "llm.token_count.completion"
OI_INVOCATION_PARAMETERS = "llm.invocation_parameters"
OI_INPUT_MESSAGES = "llm.input_messages."
OI_OUTPUT_MESSAGES = "llm.output_messages."
OI_EMBEDDING_MODEL = "embedding.model_name"
OI_TOOL_NAME = "tool.name"
OI_TOOL_ID = "tool.id"
OI_TOOL_CALL_ID = "tool_call.id"
OI_AGENT_NAME = "agent.name"
OI_INPUT_VALUE = "input.value"
OI_OUTPUT_VALUE = "output.value"
OI_OUTPUT_MIME_TYPE = "output.mime_type"
OI_FIRST_TOKEN_EVENT = "First Token Stream Event"
TRACELOOP_REQUEST_TYPE = "llm.request.type"  # OpenLLMetry: chat | completion | embedding
TRACELOOP_SPAN_KIND = "traceloop.span.kind"  # workflow | task | agent | tool
TTFT_ATTRIBUTES = (A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, "gen_ai.server.time_to_first_token",
                   "llm.time_to_first_token")
# Span events whose first occurrence marks the first streamed chunk.
FIRST_CHUNK_EVENTS = frozenset({OI_FIRST_TOKEN_EVENT, "gen_ai.content.completion.chunk",
                                "gen_ai.choice.chunk", "first_token", "llm.content.completion.chunk"})
OPERATION_DETAILS_EVENT = "gen_ai.client.inference.operation.details"

# GenAI operations that are one model call; OpenInference span kinds likewise.
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings",
                            "completion", "embedding"})
_OI_TYPES = {"LLM": A.SpanType.LLM_CALL, "EMBEDDING": A.SpanType.LLM_CALL,
             "TOOL": A.SpanType.TOOL_CALL, "AGENT": A.SpanType.EPISODE}
_OI_OPERATIONS = {"LLM": "chat", "EMBEDDING": "embeddings", "TOOL": A.OP_EXECUTE_TOOL,
                  "AGENT": A.OP_INVOKE_AGENT}
_TRACELOOP_TYPES = {"agent": A.SpanType.EPISODE, "tool": A.SpanType.TOOL_CALL}

# Keys whose presence makes a span worth decoding for mapping (besides being a root).
_TRIGGER_PREFIXES = ("gen_ai.", "llm.", "openinference.", "tool.", "traceloop.", "agent.name")


def worth_mapping(keys: Iterable[str]) -> bool:
    """Whether a foreign span's attribute keys name anything :func:`map_span` reads."""
    return any(key.startswith(_TRIGGER_PREFIXES) for key in keys)


@dataclass
class SourceSpan:
    """What :func:`map_span` reads of a received span (attributes already redacted)."""

    name: str
    attributes: Mapping[str, Any]
    start_ns: int = 0
    is_root: bool = False
    status_error: bool = False
    events: list[tuple[int, str, Mapping[str, Any]]] = field(default_factory=list)


def map_span(span: SourceSpan) -> dict[str, Any]:
    """Attributes to add to a span that shardscope did not write (empty for its own)."""
    attrs = span.attributes
    if A.SPAN_TYPE in attrs:
        return {}
    out: dict[str, Any] = {}
    if OI_SPAN_KIND in attrs:
        convention = "openinference"
        _map_openinference(span, out)
    elif any(key.startswith("gen_ai.") for key in attrs) or TRACELOOP_REQUEST_TYPE in attrs:
        convention = "gen_ai"
        _map_gen_ai(span, out)
    else:
        return {}  # nothing GenAI about it
    if out.get(A.SPAN_TYPE) == A.SpanType.EPISODE:
        out[A.SCAFFOLD_NAME] = out.get(A.SCAFFOLD_NAME) or span.name
    # (a plain root that turns out to be its trace's episode is named by tracer/episodes.py)
    _map_common(span, out)
    added = {k: v for k, v in out.items() if v is not None and k not in attrs}
    if not added:
        return {}
    added[A.MAPPED_CONVENTION] = convention
    added[A.MAPPED_KEYS] = sorted(added)
    return added


# --- GenAI (current and deprecated names), OpenLLMetry ------------------------------------
def _map_gen_ai(span: SourceSpan, out: dict[str, Any]) -> None:
    attrs = span.attributes
    operation = attrs.get(A.GEN_AI_OPERATION_NAME)
    kind = _gen_ai_type(span, operation)
    if kind is None:
        return
    out[A.SPAN_TYPE] = kind
    if operation is None:
        out[A.GEN_AI_OPERATION_NAME] = {A.SpanType.LLM_CALL: "chat",
                                        A.SpanType.TOOL_CALL: A.OP_EXECUTE_TOOL,
                                        A.SpanType.EPISODE: A.OP_INVOKE_AGENT}[kind]
    out[A.GEN_AI_PROVIDER_NAME] = attrs.get(GEN_AI_SYSTEM)
    if kind == A.SpanType.LLM_CALL:
        out[A.GEN_AI_USAGE_INPUT_TOKENS] = attrs.get(GEN_AI_USAGE_PROMPT_TOKENS)
        out[A.GEN_AI_USAGE_OUTPUT_TOKENS] = attrs.get(GEN_AI_USAGE_COMPLETION_TOKENS)
        _legacy_messages(span, out)
    elif kind == A.SpanType.TOOL_CALL:
        out[A.GEN_AI_TOOL_NAME] = _after(span.name, "execute_tool ")
        out[A.GEN_AI_TOOL_CALL_ARGUMENTS] = _text(attrs.get("tool_arguments"))
        out[A.GEN_AI_TOOL_CALL_RESULT] = _text(attrs.get("tool_response"))
    else:
        out[A.SCAFFOLD_NAME] = _agent_name(span)
        out[A.SCAFFOLD_HASH] = _text(attrs.get(GEN_AI_AGENT_VERSION))


def _gen_ai_type(span: SourceSpan, operation: Any) -> str | None:
    attrs = span.attributes
    if operation in LLM_OPERATIONS:
        return A.SpanType.LLM_CALL
    if operation == A.OP_EXECUTE_TOOL:
        return A.SpanType.TOOL_CALL
    if operation == A.OP_INVOKE_AGENT:
        return A.SpanType.EPISODE
    if operation is not None:
        return None  # create_agent, ...: an ordinary span
    traceloop = _TRACELOOP_TYPES.get(str(attrs.get(TRACELOOP_SPAN_KIND, "")))
    if traceloop:
        return traceloop
    if attrs.get(TRACELOOP_REQUEST_TYPE) in ("chat", "completion", "embedding") or (
            GEN_AI_SYSTEM in attrs and A.GEN_AI_REQUEST_MODEL in attrs):
        return A.SpanType.LLM_CALL
    return None


def _legacy_messages(span: SourceSpan, out: dict[str, Any]) -> None:
    """Content from gen_ai.prompt.N.* / gen_ai.completion.N.* or from span events."""
    attrs = span.attributes
    if A.GEN_AI_INPUT_MESSAGES in attrs and A.GEN_AI_OUTPUT_MESSAGES in attrs:
        return
    prompts = _indexed(attrs, GEN_AI_PROMPT_PREFIX)
    completions = _indexed(attrs, GEN_AI_COMPLETION_PREFIX)
    inputs = [_flat_message(m) for m in prompts]
    outputs = [_flat_message(m, output=True) for m in completions]
    if not inputs and not outputs:
        inputs, outputs = messages_from_events(
            (name, event) for _, name, event in span.events)
    out[A.GEN_AI_INPUT_MESSAGES] = _json(inputs)
    out[A.GEN_AI_OUTPUT_MESSAGES] = _json(outputs)
    out[A.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons(outputs)


def _flat_message(m: Mapping[str, Any], output: bool = False) -> dict[str, Any]:
    """One gen_ai.prompt.N / gen_ai.completion.N group (OpenLLMetry's flattened message)."""
    calls = [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments")}
             for c in _indexed(m, "tool_calls.")]
    return message(m.get("role") or ("assistant" if output else "user"), m.get("content"),
                   calls, m.get("tool_call_id"), m.get("finish_reason") if output else None)


# --- OpenInference ------------------------------------------------------------------------
def _map_openinference(span: SourceSpan, out: dict[str, Any]) -> None:
    attrs = span.attributes
    kind = str(attrs.get(OI_SPAN_KIND, "")).upper()
    span_type = _OI_TYPES.get(kind)
    if span_type is None:
        return  # CHAIN, RETRIEVER, RERANKER, GUARDRAIL, EVALUATOR: ordinary spans
    out[A.SPAN_TYPE] = span_type
    out[A.GEN_AI_OPERATION_NAME] = _OI_OPERATIONS[kind]
    if span_type == A.SpanType.LLM_CALL:
        _openinference_llm(span, out)
    elif span_type == A.SpanType.TOOL_CALL:
        out[A.GEN_AI_TOOL_NAME] = attrs.get(OI_TOOL_NAME) or _after(span.name, "execute_tool ")
        out[A.GEN_AI_TOOL_CALL_ID] = attrs.get(OI_TOOL_CALL_ID) or attrs.get(OI_TOOL_ID)
        out[A.GEN_AI_TOOL_CALL_ARGUMENTS] = _text(attrs.get(OI_INPUT_VALUE))
        out[A.GEN_AI_TOOL_CALL_RESULT] = _text(attrs.get(OI_OUTPUT_VALUE))
    else:
        out[A.SCAFFOLD_NAME] = _agent_name(span)


def _openinference_llm(span: SourceSpan, out: dict[str, Any]) -> None:
    attrs = span.attributes
    params = _loads(attrs.get(OI_INVOCATION_PARAMETERS))
    params = params if isinstance(params, dict) else {}
    response = _loads(attrs.get(OI_OUTPUT_VALUE)) if "json" in str(
        attrs.get(OI_OUTPUT_MIME_TYPE, "json")) else None
    response = response if isinstance(response, dict) else {}
    model = attrs.get(OI_MODEL_NAME) or attrs.get(OI_EMBEDDING_MODEL)
    out[A.GEN_AI_PROVIDER_NAME] = attrs.get(OI_PROVIDER) or attrs.get(OI_SYSTEM)
    out[A.GEN_AI_REQUEST_MODEL] = attrs.get(OI_REQUEST_MODEL) or params.get("model") or model
    out[A.GEN_AI_RESPONSE_MODEL] = attrs.get(OI_RESPONSE_MODEL) or response.get("model") or model
    out[A.GEN_AI_RESPONSE_ID] = response.get("id")
    out[A.GEN_AI_USAGE_INPUT_TOKENS] = attrs.get(OI_PROMPT_TOKENS)
    out[A.GEN_AI_USAGE_OUTPUT_TOKENS] = attrs.get(OI_COMPLETION_TOKENS)
    for key, names in ((A.GEN_AI_REQUEST_TEMPERATURE, ("temperature",)),
                       (A.GEN_AI_REQUEST_TOP_P, ("top_p",)),
                       (A.GEN_AI_REQUEST_MAX_TOKENS, ("max_tokens", "max_completion_tokens")),
                       (A.GEN_AI_REQUEST_SEED, ("seed",))):
        out[key] = next((params[n] for n in names if params.get(n) is not None), None)
    outputs = [_oi_message(m) for m in _indexed(attrs, OI_OUTPUT_MESSAGES)]
    reasons = [c.get("finish_reason") for c in response.get("choices") or []
               if isinstance(c, dict)]
    for msg, reason in zip(outputs, reasons, strict=False):
        if reason:
            msg["finish_reason"] = reason
    out[A.GEN_AI_INPUT_MESSAGES] = _json(
        [_oi_message(m) for m in _indexed(attrs, OI_INPUT_MESSAGES)])
    out[A.GEN_AI_OUTPUT_MESSAGES] = _json(outputs)
    out[A.GEN_AI_RESPONSE_FINISH_REASONS] = [r for r in reasons if r] or None


def _oi_message(m: Mapping[str, Any]) -> dict[str, Any]:
    """One llm.input_messages.N / llm.output_messages.N group (its ``message.`` keys)."""
    msg = _indexed_one(m, "message.")
    content: Any = msg.get("content")
    if content is None:
        texts = [c.get("message_content.text") for c in _indexed(msg, "contents.")
                 if c.get("message_content.type", "text") == "text"]
        content = "".join(t for t in texts if t) or None
    calls = [{"id": c.get("tool_call.id"), "name": c.get("tool_call.function.name"),
              "arguments": c.get("tool_call.function.arguments")}
             for c in _indexed(msg, "tool_calls.")]
    return message(msg.get("role") or "user", content, calls, msg.get("tool_call_id"))


# --- shared -------------------------------------------------------------------------------
def _map_common(span: SourceSpan, out: dict[str, Any]) -> None:
    attrs = span.attributes
    if out.get(A.SPAN_TYPE, attrs.get(A.SPAN_TYPE)) == A.SpanType.LLM_CALL:
        out[A.MODEL_ID] = (attrs.get(A.GEN_AI_REQUEST_MODEL) or out.get(A.GEN_AI_REQUEST_MODEL)
                           or attrs.get(A.GEN_AI_RESPONSE_MODEL)
                           or out.get(A.GEN_AI_RESPONSE_MODEL))
        ttft = time_to_first_token(span)
        if ttft is not None:
            out[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttft
        if not attrs.get(A.GEN_AI_RESPONSE_FINISH_REASONS) and not out.get(
                A.GEN_AI_RESPONSE_FINISH_REASONS):
            outputs = _loads(attrs.get(A.GEN_AI_OUTPUT_MESSAGES))
            out[A.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons(outputs)
    elif out.get(A.SPAN_TYPE) == A.SpanType.EPISODE:
        out[A.MODEL_ID] = attrs.get(A.GEN_AI_REQUEST_MODEL) or attrs.get(OI_MODEL_NAME)
    if span.status_error and A.ERROR_TYPE not in attrs:
        out[A.ERROR_TYPE] = next((e.get("exception.type") for _, name, e in span.events
                                  if name == "exception" and e.get("exception.type")), None)


def time_to_first_token(span: SourceSpan) -> float | None:
    """Seconds from the span's start to its first token: an attribute, else the first
    ``First Token Stream Event`` / chunk event."""
    for key in TTFT_ATTRIBUTES:
        value = span.attributes.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    for time_ns, name, _ in span.events:
        if name in FIRST_CHUNK_EVENTS and time_ns >= span.start_ns > 0:
            return (time_ns - span.start_ns) / 1e9
    return None


def message(role: Any, content: Any, calls: Iterable[Mapping[str, Any]] = (),
            tool_call_id: Any = None, finish_reason: Any = None) -> dict[str, Any]:
    """A message in the GenAI ``parts[]`` shape the views read."""
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append({"type": "tool_call_response", "id": tool_call_id, "response": content})
    elif content not in (None, ""):
        parts.append({"type": "text", "content": content if isinstance(content, str)
                      else json.dumps(content)})
    for call in calls:
        function = call.get("function")
        if isinstance(function, Mapping):  # OpenAI's wire shape
            call = {"id": call.get("id"), **function}
        parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                      "arguments": _arguments(call.get("arguments"))})
    out: dict[str, Any] = {"role": str(role), "parts": parts}
    if finish_reason:
        out["finish_reason"] = finish_reason
    return out


# Deprecated GenAI content events (span events or OTLP log records) and their roles.
EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
               "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def messages_from_events(
    events: Iterable[tuple[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Input and output messages of GenAI content events: ``(event name, body)`` pairs,
    the body being a log record's body or a span event's attributes."""
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for name, body in events:
        body = body if isinstance(body, Mapping) else {"content": body}
        if name in EVENT_ROLES:
            inputs.append(message(body.get("role") or EVENT_ROLES[name], body.get("content"),
                                  body.get("tool_calls") or (), body.get("id")))
        elif name == "gen_ai.choice":
            inner = body.get("message")
            msg: Mapping[str, Any] = inner if isinstance(inner, Mapping) else body
            outputs.append(message(msg.get("role") or "assistant", msg.get("content"),
                                   msg.get("tool_calls") or (), None, body.get("finish_reason")))
        elif name in ("gen_ai.content.prompt", "gen_ai.content.completion"):
            key = "gen_ai.prompt" if name.endswith("prompt") else "gen_ai.completion"
            listed = _loads(body.get(key))
            target = inputs if key == "gen_ai.prompt" else outputs
            for m in listed if isinstance(listed, list) else []:
                if isinstance(m, Mapping):
                    target.append(message(m.get("role") or "user", m.get("content"),
                                          m.get("tool_calls") or (), m.get("tool_call_id"),
                                          m.get("finish_reason")))
        elif name == OPERATION_DETAILS_EVENT:
            for key, target in ((A.GEN_AI_INPUT_MESSAGES, inputs),
                                (A.GEN_AI_OUTPUT_MESSAGES, outputs)):
                listed = _loads(body.get(key))
                target.extend(m for m in listed if isinstance(m, dict)) if isinstance(
                    listed, list) else None
    return inputs, outputs


def finish_reasons(outputs: Any) -> list[str] | None:
    if not isinstance(outputs, list):
        return None
    reasons = [str(m["finish_reason"]) for m in outputs
               if isinstance(m, Mapping) and m.get("finish_reason")]
    return reasons or None


_INDEX = re.compile(r"(\d+)\.(.+)")


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.N.rest`` keys grouped by N (in order of N) as ``{rest: value}``."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if key.startswith(prefix):
            match = _INDEX.fullmatch(key[len(prefix):])
            if match:
                groups.setdefault(int(match[1]), {})[match[2]] = value
    return [groups[i] for i in sorted(groups)]


def _indexed_one(attrs: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in attrs.items() if k.startswith(prefix)}


def _agent_name(span: SourceSpan) -> str | None:
    attrs = span.attributes
    return (attrs.get(A.GEN_AI_AGENT_NAME) or attrs.get(OI_AGENT_NAME)
            or _after(span.name, "invoke_agent ") or None)


def _after(name: str, prefix: str) -> str | None:
    return name[len(prefix):].strip() or None if name.startswith(prefix) else None


def _arguments(value: Any) -> Any:
    """Tool-call arguments as an object where they are JSON text (as shardscope stores them)."""
    parsed = _loads(value)
    return parsed if isinstance(parsed, (dict, list)) else value


def _loads(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _json(messages: list[dict[str, Any]]) -> str | None:
    return json.dumps(messages, ensure_ascii=False) if messages else None
