"""shardscope's span API: typed spans, inherited context attributes, content policy, redaction.

Scaffolds, backends and the runner create spans only through :class:`Tracing` (see
``shardscope.tracer.setup``), never by calling the SDK directly, so that every span says what it is
(``shardscope.span.type``), inherits the run / episode / step it belongs to, drops message
content when content capture is off, and never carries a secret.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer

from shardscope.tracer import attributes as A
from shardscope.tracer.encoding import to_json
from shardscope.tracer.metrics import GenAIMetrics
from shardscope.tracer.redact import Redactor

# Message content: recorded by default (it is the point of this product), dropped when
# capture_content is off.
CONTENT_ATTRIBUTES = frozenset(
    {
        A.GEN_AI_INPUT_MESSAGES,
        A.GEN_AI_OUTPUT_MESSAGES,
        A.GEN_AI_SYSTEM_INSTRUCTIONS,
        A.GEN_AI_TOOL_CALL_ARGUMENTS,
        A.GEN_AI_TOOL_CALL_RESULT,
        A.STEP_INPUT,
        A.STEP_OUTPUT,
        A.LLM_RAW_REQUEST,
        A.LLM_RAW_RESPONSE,
        A.EPISODE_FINAL_ANSWER,
        A.TOKEN_TEXT,
        A.TOKEN_TOP_LOGPROBS,
    }
)
# Free text that may quote a credential: always passed through the redactor.
_REDACTED_ATTRIBUTES = CONTENT_ATTRIBUTES | {
    A.EPISODE_ERROR,
    A.ATTEMPT_ERROR_MESSAGE,
    A.TOOL_ERROR_MESSAGE,
    A.STEP_PROTOCOL_ERROR,
    A.LLM_TOOL_CALL_ERRORS,
    A.EPISODE_CHECK_DETAIL,
    A.RUN_CONFIG,
}

_INHERITED: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "shardscope_inherited", default=MappingProxyType({})
)


class ContextAttributesProcessor(SpanProcessor):
    """Copies the attributes of the enclosing :meth:`Tracing.inherit` scope onto new spans.

    Spans made by :meth:`Tracing.span` already carry them (merged before the SDK cleans the
    attributes once); this covers spans other instrumentation starts inside our scopes.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        inherited = _INHERITED.get()
        if inherited:
            existing = span.attributes or {}
            if A.SPAN_TYPE not in existing:
                span.set_attributes({k: v for k, v in inherited.items() if k not in existing})

    def on_end(self, span: ReadableSpan) -> None:
        return None


class SpanPolicy:
    """What may be written to a span: content on/off, and the redactor."""

    def __init__(self, capture_content: bool, redactor: Redactor) -> None:
        self.capture_content = capture_content
        self.redactor = redactor

    def clean(self, key: str, value: Any) -> Any:
        """The value to record for ``key``, or None to record nothing."""
        if value is None:
            return None
        if key in _REDACTED_ATTRIBUTES:
            if not self.capture_content and key in CONTENT_ATTRIBUTES:
                return None
            if not isinstance(value, (str, int, float, bool)):
                value = to_json(value)
            return self.redactor.value(value)
        return value


class TracedSpan:
    """A live span with shardscope's helpers; wraps an SDK span."""

    __slots__ = ("_policy", "span")

    def __init__(self, span: Span, policy: SpanPolicy) -> None:
        self.span = span
        self._policy = policy

    @property
    def span_id(self) -> str:
        return format(self.span.get_span_context().span_id, "016x")

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def set(self, key: str, value: Any) -> None:
        """Set one attribute (None is ignored; structured content is stored as JSON text)."""
        cleaned = self._policy.clean(key, value)
        if cleaned is not None:
            self.span.set_attribute(key, cleaned)

    def set_many(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set(key, value)

    def event(self, name: str, attributes: Mapping[str, Any], timestamp_ns: int | None = None) -> None:
        clean = self._policy.clean
        attrs = {k: c for k, v in attributes.items() if (c := clean(k, v)) is not None}
        self.span.add_event(name, attrs, timestamp=timestamp_ns)

    def token(
        self,
        index: int,
        text: str,
        offset_ms: float,
        logprob: float | None = None,
        top_logprobs: Any = None,
        timestamp_ns: int | None = None,
    ) -> None:
        """Record one streamed token as a ``shardscope.token`` event (the hot path)."""
        attrs: dict[str, Any] = {A.TOKEN_INDEX: index, A.TOKEN_OFFSET_MS: offset_ms}
        if self._policy.capture_content:
            attrs[A.TOKEN_TEXT] = self._policy.redactor.text(text)
            if top_logprobs is not None:
                attrs[A.TOKEN_TOP_LOGPROBS] = json.dumps(top_logprobs, ensure_ascii=False)
        if logprob is not None:
            attrs[A.TOKEN_LOGPROB] = logprob
        self.span.add_event(A.EVENT_TOKEN, attrs, timestamp=timestamp_ns)

    def redact_stream(self, texts: Sequence[str]) -> list[str]:
        """The texts of a token stream, redacted as the text they spell together (a secret
        spread over several tokens is caught); record each with :meth:`token`."""
        return self._policy.redactor.tokens(texts)

    def fail(self, error_type: str, message: str | None = None) -> None:
        """Mark the span failed without an exception (e.g. a protocol error)."""
        self.span.set_attribute(A.ERROR_TYPE, error_type)
        text = self._policy.redactor.text(message) if message else None
        self.span.set_status(Status(StatusCode.ERROR, text))

    def record_exception(self, exc: BaseException) -> None:
        redact = self._policy.redactor.text
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.span.add_event(
            "exception",
            {
                "exception.type": type(exc).__qualname__,
                "exception.message": redact(str(exc)),
                "exception.stacktrace": redact(stack),
            },
        )


class Tracing:
    """A configured tracer: create spans, scope inherited attributes, flush, shut down."""

    def __init__(self, tracer: Tracer, policy: SpanPolicy, metrics: GenAIMetrics | None = None
                 ) -> None:
        self.tracer = tracer
        self.policy = policy
        self.metrics = metrics  # None: no metric reader configured, nothing is recorded

    def span(
        self,
        name: str,
        span_type: str = A.SpanType.SPAN,
        attributes: Mapping[str, Any] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        *,
        new_trace: bool = False,
    ) -> _SpanScope:
        """A span named ``name`` of ``span_type``, used as ``with tracing.span(...) as span``.

        Attributes of the enclosing :meth:`inherit` scopes are added (explicit ones win); an
        exception marks the span failed (``error.type``, redacted message) and propagates.
        With ``new_trace`` the span is the root of a trace of its own, linked to the span it
        would otherwise have been a child of (an episode and its run).
        """
        attrs: dict[str, Any] = {**_INHERITED.get(), A.SPAN_TYPE: span_type}
        if attributes:
            if attributes.keys() & _REDACTED_ATTRIBUTES:
                clean = self.policy.clean
                attributes = {k: c for k, v in attributes.items() if (c := clean(k, v)) is not None}
            attrs.update(attributes)
        return _SpanScope(self, name, attrs, kind, new_trace)

    @staticmethod
    @contextlib.contextmanager
    def inherit(attributes: Mapping[str, Any]) -> Iterator[None]:
        """Spans started inside this block carry ``attributes`` (unless they set their own)."""
        merged = {**_INHERITED.get(), **{k: v for k, v in attributes.items() if v is not None}}
        token = _INHERITED.set(merged)
        try:
            yield
        finally:
            _INHERITED.reset(token)

    @staticmethod
    def inherited() -> Mapping[str, Any]:
        return _INHERITED.get()

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()


class _SpanScope:
    """Context manager behind :meth:`Tracing.span` (a class: cheaper than a generator)."""

    __slots__ = ("_attrs", "_kind", "_name", "_new_trace", "_span", "_token", "_tracing", "ended")

    def __init__(self, tracing: Tracing, name: str, attrs: dict[str, Any], kind: SpanKind,
                 new_trace: bool = False) -> None:
        self._tracing = tracing
        self._name = name
        self._attrs = attrs
        self._kind = kind
        self._new_trace = new_trace
        self.ended: ReadableSpan | None = None  # the span, once __exit__ ended it

    def __enter__(self) -> TracedSpan:
        if self._new_trace:
            span = self._start_root()
        else:
            span = self._tracing.tracer.start_span(self._name, kind=self._kind,
                                                   attributes=self._attrs)
        # Tracing's tracer comes from the SDK's provider (always sampled), so the span is an SDK
        # span; TracedSpan and __exit__ read its recorded attributes and start time.
        assert isinstance(span, Span), type(span)
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return TracedSpan(span, self._tracing.policy)

    def _start_root(self) -> Any:
        # An empty context has no parent: the SDK starts a new trace id. The span it would have
        # been a child of is kept as a link (peers show it as "linked from").
        enclosing = trace.get_current_span().get_span_context()
        links = [Link(enclosing)] if enclosing.is_valid else None
        return self._tracing.tracer.start_span(self._name, context=Context(), kind=self._kind,
                                               attributes=self._attrs, links=links)

    def abandon(self) -> None:
        """Leave the span unended (it is never exported) and restore the context."""
        otel_context.detach(self._token)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        span = self._span
        try:
            if exc is not None:
                if A.ERROR_TYPE not in (span.attributes or {}):
                    span.set_attribute(A.ERROR_TYPE, exc_type.__qualname__)
                traced = TracedSpan(span, self._tracing.policy)
                traced.record_exception(exc)
                message = self._tracing.policy.redactor.text(f"{exc_type.__qualname__}: {exc}")
                span.set_status(Status(StatusCode.ERROR, message))
        finally:
            otel_context.detach(self._token)
            span.end()
            self.ended = span
