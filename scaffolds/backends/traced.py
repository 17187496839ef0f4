"""The traced model: one wrapper that gives every backend the same spans and retries.

``chat {model}`` span per logical call (GenAI attributes, messages as JSON parts, usage,
cost), one ``shardscope.token`` event per streamed token (offset, text, logprob, top
alternatives), one ``shardscope.attempt.failed`` event per failed attempt. Retries are the
only retry layer in the product (SDK retries are off in every backend): tenacity, with
``Retry-After`` honoured, authentication and bad-request errors failing at once, and a
per-call timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from shardscope.config.catalog import Price
from shardscope.scaffolds.backends.base import Backend, Capabilities
from shardscope.scaffolds.backends.errors import (
    BackendError,
    CallTimeoutError,
    StreamInterruptedError,
)
from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, StreamChunk, ToolSpec
from shardscope.tracer import attributes as A
from shardscope.tracer.encoding import to_json
from shardscope.tracer.metrics import CallMeasurement
from shardscope.tracer.spans import TracedSpan, Tracing


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_wait_s: float = 0.5
    max_wait_s: float = 30.0
    max_retry_after_s: float = 120.0  # a Retry-After longer than this fails the call


@dataclass(frozen=True)
class CallTimeout:
    """How long one model call may take: ``base_s`` plus ``per_token_s`` for each token the
    call may write (its max_tokens), so a longer answer or a slower model gets more time.
    Settings ``call_timeout`` and ``call_timeout_per_token``."""

    base_s: float = 120.0
    per_token_s: float = 0.25

    def seconds(self, max_tokens: int | None) -> float:
        return self.base_s + self.per_token_s * (max_tokens or 0)

    def explain(self, max_tokens: int | None) -> str:
        return (f"call_timeout {self.base_s:g} s + {max_tokens or 0} max tokens x "
                f"call_timeout_per_token {self.per_token_s:g} s; raise them with "
                "SHARDSCOPE_CALL_TIMEOUT / SHARDSCOPE_CALL_TIMEOUT_PER_TOKEN or in shardscope.toml")


class TracedModel:
    """A backend plus its catalog identity, traced and retried. Scaffolds only see this."""

    def __init__(
        self,
        backend: Backend,
        tracing: Tracing,
        *,
        model_id: str | None = None,
        price: Price | None = None,
        retry: RetryPolicy = RetryPolicy(),
        stream: bool | None = None,
        logprobs: bool = False,
        top_logprobs: int = 0,
        sleep: Any = asyncio.sleep,
        call_timeout: CallTimeout | None = None,
    ) -> None:
        self.backend = backend
        self.tracing = tracing
        self.model_id = model_id or backend.model
        self.price = price
        self.retry = retry
        self.stream_default = backend.capabilities.streaming if stream is None else stream
        self.logprobs = logprobs and backend.capabilities.logprobs
        self.top_logprobs = top_logprobs if self.logprobs else 0
        self._sleep = sleep
        self.call_timeout = call_timeout  # None: the call's own timeout_s, unexplained

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.capabilities

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
        *,
        stream: bool | None = None,
    ) -> ModelOutput:
        """Call the model once (retrying transient failures) inside a ``chat`` span."""
        if self.logprobs and not config.logprobs:
            config = _with(config, logprobs=True, top_logprobs=self.top_logprobs)
        if self.call_timeout is not None:
            config = _with(config, timeout_s=self.call_timeout.seconds(config.max_tokens))
        streaming = (self.stream_default if stream is None else stream) and (
            self.backend.capabilities.streaming
        )
        operation = A.OP_CHAT if self.backend.capabilities.chat_template else A.OP_TEXT_COMPLETION
        kind = SpanKind.INTERNAL if self.backend.in_process else SpanKind.CLIENT
        measured: list[Any] = [None, None, ()]  # output, ttft, chunk offsets (for metrics)
        scope = self.tracing.span(
            f"{operation} {self.backend.model}",
            A.SpanType.LLM_CALL,
            self._request_attributes(operation, messages, tools, config, streaming),
            kind=kind,
        )
        try:
            with scope as span:
                output, attempts, ttft, offsets = await self._with_retries(
                    span, messages, tools, config, streaming)
                measured[:] = [output, ttft, offsets]
                span.set(A.LLM_ATTEMPTS, attempts)
                self._record_output(span, output, ttft)
                return output
        finally:
            if self.tracing.metrics is not None and scope.ended is not None:
                self._record_metrics(scope.ended, *measured)

    def _record_metrics(self, span: Any, output: ModelOutput | None, ttft: float | None,
                        offsets: Sequence[float]) -> None:
        """The call's GenAI metrics, from its ended span (so they equal what the store's
        ``genai_metrics`` view derives from the span)."""
        assert self.tracing.metrics is not None
        usage = output.usage if output is not None else None
        self.tracing.metrics.record(CallMeasurement(
            attributes=dict(span.attributes or {}),
            duration_s=((span.end_time or 0) - (span.start_time or 0)) / 1e9,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            time_to_first_chunk_s=ttft,
            chunk_offsets_ms=offsets,
        ))

    def _request_attributes(
        self,
        operation: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        config: GenerationConfig,
        streaming: bool,
    ) -> dict[str, Any]:
        system = [m for m in messages if m.role == "system"]
        rest = [m for m in messages if m.role != "system"]
        return {
            A.GEN_AI_OPERATION_NAME: operation,
            A.GEN_AI_PROVIDER_NAME: self.backend.provider,
            A.GEN_AI_REQUEST_MODEL: self.backend.model,
            A.MODEL_ID: self.model_id,
            A.GEN_AI_REQUEST_TEMPERATURE: config.temperature,
            A.GEN_AI_REQUEST_TOP_P: config.top_p,
            A.GEN_AI_REQUEST_MAX_TOKENS: config.max_tokens,
            A.GEN_AI_REQUEST_SEED: config.seed,
            A.GEN_AI_REQUEST_STOP_SEQUENCES: list(config.stop) or None,
            A.GEN_AI_REQUEST_STREAM: streaming,
            A.LLM_STREAMED: streaming,
            A.LLM_LOGPROBS: config.logprobs,
            A.SERVER_ADDRESS: self.backend.server_address,
            A.SERVER_PORT: self.backend.server_port,
            A.GEN_AI_SYSTEM_INSTRUCTIONS: [
                {"type": "text", "content": m.content} for m in system
            ]
            or None,
            A.GEN_AI_INPUT_MESSAGES: [m.to_genai() for m in rest],
            # A JSON string, flat items: the shape the conventions define and Phoenix reads.
            A.GEN_AI_TOOL_DEFINITIONS: to_json([t.as_tool_definition() for t in tools])
            if tools else None,
        }

    async def _with_retries(
        self,
        span: TracedSpan,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        config: GenerationConfig,
        streaming: bool,
    ) -> tuple[ModelOutput, int, float | None, tuple[float, ...]]:
        attempt = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable_here(self.retry)),
            sleep=self._sleep,
            reraise=True,
        )
        async for state in retrying:
            with state:
                attempt += 1
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(config.timeout_s):
                        if streaming:
                            output, ttft, offsets = await self._stream(span, messages, tools,
                                                                       config)
                        else:
                            output = await self.backend.generate(messages, tools, config)
                            ttft, offsets = None, ()
                    return output, attempt, ttft, offsets
                except BackendError as exc:
                    self._record_failed_attempt(span, attempt, exc, started)
                    raise
                except TimeoutError:
                    why = (f" ({self.call_timeout.explain(config.max_tokens)})"
                           if self.call_timeout is not None else " (the call's timeout_s)")
                    timeout = CallTimeoutError(
                        f"no complete answer within {config.timeout_s:g} s{why}")
                    self._record_failed_attempt(span, attempt, timeout, started)
                    raise timeout from None
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _stream(
        self,
        span: TracedSpan,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        config: GenerationConfig,
    ) -> tuple[ModelOutput, float | None, tuple[float, ...]]:
        sent = time.perf_counter()
        received: list[tuple[StreamChunk, float, int]] = []
        output: ModelOutput | None = None
        async for item in self.backend.stream(messages, tools, config):
            if isinstance(item, ModelOutput):
                output = item
            else:
                received.append((item, (time.perf_counter() - sent) * 1000, time.time_ns()))
        if output is None:
            raise StreamInterruptedError(
                f"{self.backend.describe()}: the stream ended without a final answer"
            )
        # Emitted only once the attempt succeeded, so a retried attempt's tokens never mix in.
        # Redacted as one text: a key streamed a few characters per token is still caught.
        texts = span.redact_stream([chunk.text for chunk, _, _ in received])
        offsets = tuple(round(offset_ms, 3) for _, offset_ms, _ in received)
        for index, ((chunk, _, wall_ns), text) in enumerate(zip(received, texts, strict=True)):
            top = [{"token": t.token, "logprob": t.logprob} for t in chunk.top_logprobs] or None
            span.token(index, text, offsets[index], chunk.logprob, top, wall_ns)
        return output, (received[0][1] / 1000 if received else None), offsets

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        backoff = min(
            self.retry.max_wait_s,
            self.retry.initial_wait_s * 2 ** (state.attempt_number - 1),
        ) * random.uniform(0.8, 1.2)
        return float(retry_after) if retry_after is not None else backoff

    def _record_failed_attempt(
        self,
        span: TracedSpan,
        attempt: int,
        exc: BackendError,
        started: float,
    ) -> None:
        will_retry = _is_retryable_here(self.retry)(exc) and attempt < self.retry.max_attempts
        retry_after = getattr(exc, "retry_after", None)
        span.event(
            A.EVENT_ATTEMPT_FAILED,
            {
                A.ATTEMPT_NUMBER: attempt,
                A.ERROR_TYPE: exc.error_type,
                A.ATTEMPT_ERROR_MESSAGE: str(exc),
                A.ATTEMPT_STATUS_CODE: exc.status_code,
                A.ATTEMPT_RETRY_AFTER_S: retry_after,
                A.ATTEMPT_WAIT_S: (
                    float(retry_after) if will_retry and retry_after is not None else None
                ),
                A.ATTEMPT_DURATION_MS: (time.perf_counter() - started) * 1000,
            },
        )
        if not will_retry:
            span.set(A.LLM_ATTEMPTS, attempt)
            span.fail(exc.error_type, str(exc))

    def _record_output(self, span: TracedSpan, output: ModelOutput, ttft: float | None) -> None:
        usage = output.usage
        started = span.span.start_time
        reason = A.finish_reason(output.finish_reason, bool(output.tool_calls))
        if ttft is not None and usage.output_tokens and started is not None:
            elapsed = (time.time_ns() - started) / 1e9 - ttft
            if elapsed > 0:
                span.set(A.LLM_TOKENS_PER_SECOND, round(usage.output_tokens / elapsed, 3))
        span.set_many(
            {
                A.GEN_AI_RESPONSE_MODEL: output.response_model,
                A.GEN_AI_RESPONSE_ID: output.response_id,
                A.GEN_AI_RESPONSE_FINISH_REASONS: [reason],
                A.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
                A.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
                A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: ttft,
                A.GEN_AI_OUTPUT_MESSAGES: [
                    {**output.message.to_genai(), "finish_reason": reason}
                ],
                A.LLM_RAW_REQUEST: output.raw_request,
                A.LLM_RAW_RESPONSE: output.raw_response,
                A.LLM_COST_USD: self.price.cost(usage.input_tokens, usage.output_tokens)
                if self.price
                else None,
            }
        )
        if output.malformed_tool_calls:
            span.set(
                A.LLM_TOOL_CALL_ERRORS,
                [{"name": c.name, "raw": c.raw, "error": c.error} for c in output.malformed_tool_calls],
            )

    async def aclose(self) -> None:
        await self.backend.aclose()


def _is_retryable_here(policy: RetryPolicy) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        if not isinstance(exc, BackendError) or not exc.retryable:
            return False
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is None or retry_after <= policy.max_retry_after_s

    return check


def _with(config: GenerationConfig, **changes: Any) -> GenerationConfig:
    return dataclasses.replace(config, **changes)
