"""Every span, event, metric and attribute name shardscope writes, in one module.

GenAI names come from the OpenTelemetry semantic conventions (``gen_ai.*``, the constants of
``opentelemetry-semantic-conventions``), checked against the current GenAI conventions of the
``open-telemetry/semantic-conventions-genai`` repository (docs/attributes.md states the
version and what is deliberately not emitted). What the conventions do not cover (runs,
episodes, steps, scaffolds, tasks, shards, token streams, retry attempts) lives under
``shardscope.*``. docs/attributes.md documents each name; a test checks that the table there
and this module agree.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv._incubating.attributes import session_attributes as _session
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import server_attributes as _server

# --- OpenTelemetry GenAI semantic conventions -------------------------------------------
GEN_AI_OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME: Final = _gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_RESPONSE_MODEL: Final = _gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_ID: Final = _gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_REQUEST_TEMPERATURE: Final = _gen_ai.GEN_AI_REQUEST_TEMPERATURE
GEN_AI_REQUEST_TOP_P: Final = _gen_ai.GEN_AI_REQUEST_TOP_P
GEN_AI_REQUEST_MAX_TOKENS: Final = _gen_ai.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_REQUEST_SEED: Final = _gen_ai.GEN_AI_REQUEST_SEED
GEN_AI_REQUEST_STOP_SEQUENCES: Final = _gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES
GEN_AI_REQUEST_STREAM: Final = _gen_ai.GEN_AI_REQUEST_STREAM
GEN_AI_RESPONSE_FINISH_REASONS: Final = _gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = _gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
GEN_AI_USAGE_INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_CONVERSATION_ID: Final = _gen_ai.GEN_AI_CONVERSATION_ID
GEN_AI_INPUT_MESSAGES: Final = _gen_ai.GEN_AI_INPUT_MESSAGES
GEN_AI_OUTPUT_MESSAGES: Final = _gen_ai.GEN_AI_OUTPUT_MESSAGES
GEN_AI_SYSTEM_INSTRUCTIONS: Final = _gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS
GEN_AI_TOOL_DEFINITIONS: Final = _gen_ai.GEN_AI_TOOL_DEFINITIONS
GEN_AI_OUTPUT_TYPE: Final = _gen_ai.GEN_AI_OUTPUT_TYPE
GEN_AI_TOOL_NAME: Final = _gen_ai.GEN_AI_TOOL_NAME
GEN_AI_TOOL_TYPE: Final = _gen_ai.GEN_AI_TOOL_TYPE
GEN_AI_TOOL_DESCRIPTION: Final = _gen_ai.GEN_AI_TOOL_DESCRIPTION
GEN_AI_TOOL_CALL_ID: Final = _gen_ai.GEN_AI_TOOL_CALL_ID
GEN_AI_TOOL_CALL_ARGUMENTS: Final = _gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS
GEN_AI_TOOL_CALL_RESULT: Final = _gen_ai.GEN_AI_TOOL_CALL_RESULT
GEN_AI_AGENT_NAME: Final = _gen_ai.GEN_AI_AGENT_NAME
GEN_AI_AGENT_ID: Final = _gen_ai.GEN_AI_AGENT_ID
GEN_AI_AGENT_VERSION: Final = _gen_ai.GEN_AI_AGENT_VERSION  # the scaffold hash
GEN_AI_TOKEN_TYPE: Final = _gen_ai.GEN_AI_TOKEN_TYPE  # metric attribute: input | output
# Groups a run's episode traces in the peers' session views (Phoenix, Langfuse): the run id.
SESSION_ID: Final = _session.SESSION_ID
ERROR_TYPE: Final = _error.ERROR_TYPE
SERVER_ADDRESS: Final = _server.SERVER_ADDRESS
SERVER_PORT: Final = _server.SERVER_PORT

# Values of gen_ai.operation.name that shardscope emits.
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"


class FinishReason:
    """Values of ``gen_ai.response.finish_reasons`` and of an output message's
    ``finish_reason`` (the conventions' FinishReason enum); see ``finish_reason``."""

    STOP: Final = "stop"
    LENGTH: Final = "length"
    CONTENT_FILTER: Final = "content_filter"
    TOOL_CALL: Final = "tool_call"
    ERROR: Final = "error"


# Providers' own finish reasons -> the conventions' values.
_FINISH_REASONS: Final = {
    "stop": FinishReason.STOP, "end_turn": FinishReason.STOP, "stop_sequence": FinishReason.STOP,
    "eos": FinishReason.STOP, "length": FinishReason.LENGTH, "max_tokens": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER, "refusal": FinishReason.CONTENT_FILTER,
    "tool_call": FinishReason.TOOL_CALL, "tool_calls": FinishReason.TOOL_CALL,
    "tool_use": FinishReason.TOOL_CALL, "function_call": FinishReason.TOOL_CALL,
    "error": FinishReason.ERROR,
}


def finish_reason(reported: str | None, made_tool_calls: bool) -> str:
    """The convention's finish reason for what a provider reported (never None: Phoenix drops
    a message list with one null ``finish_reason``). Unknown values pass through as they are
    (the schema allows any string); a missing one is ``tool_call`` when the answer called
    tools, else ``stop``."""
    if reported:
        return _FINISH_REASONS.get(reported.lower(), reported)
    return FinishReason.TOOL_CALL if made_tool_calls else FinishReason.STOP


# gen_ai.provider.name for OpenAI-compatible servers: the conventions have no well-known value
# for them, so (as they allow) a custom one, never ``openai`` (the OpenAI service's flavour).
PROVIDER_VLLM: Final = "vllm"
PROVIDER_OLLAMA: Final = "ollama"
PROVIDER_LLAMA_CPP: Final = "llama_cpp"
PROVIDER_OPENAI_COMPATIBLE: Final = "openai_compatible"  # any other OpenAI-compatible server

# --- GenAI client metrics (tracer/metrics.py) -----------------------------------------------
METRIC_OPERATION_DURATION: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
METRIC_TOKEN_USAGE: Final = _gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
METRIC_TIME_TO_FIRST_CHUNK: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
METRIC_TIME_PER_OUTPUT_CHUNK: Final = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK

# --- shardscope's own names -----------------------------------------------------------------
# Every span shardscope creates says what it is, so views never parse span names.
SPAN_TYPE: Final = "shardscope.span.type"


class SpanType:
    """Values of ``shardscope.span.type``."""

    RUN_START: Final = "run_start"  # zero-length marker: a run (or its resume) began
    RUN: Final = "run"  # the whole run, ended when the matrix finishes
    EPISODE: Final = "episode"  # one task attempt: invoke_agent {scaffold}
    STEP: Final = "step"  # one loop iteration of a scaffold
    LLM_CALL: Final = "llm_call"  # chat {model}: one logical call, all its retry attempts
    TOOL_CALL: Final = "tool_call"  # execute_tool {tool}
    # zero-length marker: this episode id's attempt was abandoned (interrupted or its process
    # died); its spans stay stored, the views leave them out, ``--resume`` runs the task again
    ABANDONED_EPISODE: Final = "abandoned_episode"
    SPAN: Final = "span"  # anything else


# Run / matrix
RUN_ID: Final = "shardscope.run.id"
RUN_NAME: Final = "shardscope.run.name"
RUN_PLANNED_EPISODES: Final = "shardscope.run.planned_episodes"
RUN_CONFIG: Final = "shardscope.run.config"  # JSON: suites, models, scaffolds, seeds
RUN_RESUMED: Final = "shardscope.run.resumed"
RUN_REUSED_EPISODES: Final = "shardscope.run.reused_episodes"  # baselines reused from the store
RUN_STATUS: Final = "shardscope.run.status"  # finished | interrupted | failed

# Episode (one task attempt of one model under one scaffold with one seed)
EPISODE_ID: Final = "shardscope.episode.id"
EPISODE_KEY: Final = "shardscope.episode.key"  # suite/task/scaffold/model/seed[/ablation]
EPISODE_OUTCOME: Final = "shardscope.episode.outcome"
EPISODE_SCORE: Final = "shardscope.episode.score"
EPISODE_FINAL_ANSWER: Final = "shardscope.episode.final_answer"
EPISODE_STEPS: Final = "shardscope.episode.steps"
EPISODE_ERROR: Final = "shardscope.episode.error"
EPISODE_CHECK_DETAIL: Final = "shardscope.episode.check_detail"
EPISODE_ABANDONED_REASON: Final = "shardscope.episode.abandoned_reason"  # see AbandonReason
SUITE_NAME: Final = "shardscope.suite.name"
TASK_ID: Final = "shardscope.task.id"
SCAFFOLD_NAME: Final = "shardscope.scaffold.name"
SCAFFOLD_HASH: Final = "shardscope.scaffold.hash"
SCAFFOLD_PARAMS: Final = "shardscope.scaffold.params"  # JSON
SCAFFOLD_PROMPTS: Final = "shardscope.scaffold.prompts"  # JSON: prompt name -> text
MODEL_ID: Final = "shardscope.model.id"  # catalog id, e.g. smollm2-135m-instruct
SEED: Final = "shardscope.seed"


class Outcome:
    """Values of ``shardscope.episode.outcome``."""

    SUCCESS: Final = "success"  # final answer given and the checker accepted it
    FAILURE: Final = "failure"  # final answer given, checker rejected it
    PROTOCOL_ERROR: Final = "protocol_error"  # model broke the scaffold's protocol
    BUDGET_EXHAUSTED: Final = "budget_exhausted"  # no final answer within steps/tokens
    ERROR: Final = "error"  # infrastructure failure (backend down after retries, ...)


class AbandonReason:
    """Values of ``shardscope.episode.abandoned_reason`` (on ``abandoned_episode`` markers)."""

    CANCELLED: Final = "cancelled"  # the episode's task was cancelled (Ctrl-C under asyncio)
    INTERRUPTED: Final = "interrupted"  # SystemExit (SIGTERM) or KeyboardInterrupt inside it
    ORPHANED: Final = "orphaned"  # found by --resume: spans but no episode span (SIGKILL, crash)
    RETRIED: Final = "retried"  # ended in an infrastructure error; run again by --retry-errors


# Shards and ablation
SHARDS: Final = "shardscope.task.shards"  # names of the shards the task declares
ABLATION_SHARD: Final = "shardscope.ablation.shard"
ABLATION_MODE: Final = "shardscope.ablation.mode"  # removed | replaced
ABLATION_KIND: Final = "shardscope.ablation.kind"  # the ablated shard's kind (fact, document, ...)
ABLATION_BASELINE_KEY: Final = "shardscope.ablation.baseline_key"  # episode key of the baseline

# Step (one iteration of the token loop)
STEP_INDEX: Final = "shardscope.step.index"
STEP_INPUT: Final = "shardscope.step.input"  # what was fed back into the model (JSON)
STEP_OUTPUT: Final = "shardscope.step.output"  # what came out (text)
STEP_ACTION: Final = "shardscope.step.action"  # JSON of a scaffolds.types.StepAction
STEP_PROTOCOL_ERROR: Final = "shardscope.step.protocol_error"

# LLM call extras
LLM_ATTEMPTS: Final = "shardscope.llm.attempts"
LLM_COST_USD: Final = "shardscope.llm.cost_usd"
LLM_STREAMED: Final = "shardscope.llm.streamed"
LLM_RAW_REQUEST: Final = "shardscope.llm.raw_request"  # JSON, secrets redacted
LLM_RAW_RESPONSE: Final = "shardscope.llm.raw_response"  # JSON
LLM_LOGPROBS: Final = "shardscope.llm.logprobs_requested"
LLM_TOOL_CALL_ERRORS: Final = "shardscope.llm.tool_call_errors"  # JSON list of malformed calls
LLM_TOKENS_PER_SECOND: Final = "shardscope.llm.output_tokens_per_second"

# Token stream: one span event per streamed token on the chat span.
EVENT_TOKEN: Final = "shardscope.token"
TOKEN_INDEX: Final = "shardscope.token.index"
TOKEN_TEXT: Final = "shardscope.token.text"
TOKEN_OFFSET_MS: Final = "shardscope.token.offset_ms"  # since the request was sent
TOKEN_LOGPROB: Final = "shardscope.token.logprob"
TOKEN_TOP_LOGPROBS: Final = "shardscope.token.top_logprobs"  # JSON [{token, logprob}]
# OTLP only (the store keeps every token): token events left off a span sent over OTLP, and
# how many were sent, when its stream was longer than the per-span cap (tracer/otlp_bounds.py).
TOKEN_EVENTS_DROPPED: Final = "shardscope.token.events_dropped"
TOKEN_EVENTS_SENT: Final = "shardscope.token.events_sent"

# Retry attempts: one span event per failed attempt on the chat span.
EVENT_ATTEMPT_FAILED: Final = "shardscope.attempt.failed"
ATTEMPT_NUMBER: Final = "shardscope.attempt.number"
ATTEMPT_ERROR_MESSAGE: Final = "shardscope.attempt.error_message"
ATTEMPT_STATUS_CODE: Final = "shardscope.attempt.status_code"
ATTEMPT_RETRY_AFTER_S: Final = "shardscope.attempt.retry_after_s"
ATTEMPT_WAIT_S: Final = "shardscope.attempt.wait_s"
ATTEMPT_DURATION_MS: Final = "shardscope.attempt.duration_ms"

# Tool call extras
TOOL_OK: Final = "shardscope.tool.ok"
TOOL_ERROR_MESSAGE: Final = "shardscope.tool.error_message"
TOOL_TRUNCATED: Final = "shardscope.tool.output_truncated"
TOOL_DECLARED: Final = "shardscope.tool.declared"  # a declared function: recorded, not run

# Spans received from other instrumentations (tracer/semantic.py): what the collector added.
MAPPED_CONVENTION: Final = "shardscope.mapped.convention"  # gen_ai | openinference | otel
MAPPED_KEYS: Final = "shardscope.mapped.keys"  # the attribute keys added at ingest
MAPPED_LOG_RECORDS: Final = "shardscope.mapped.log_records"  # content log records merged in

# Attributes a span inherits from the shardscope context it was started in.
CONTEXT_ATTRIBUTES: Final = (RUN_ID, EPISODE_ID, STEP_INDEX, MODEL_ID)

# Episodes imported from Inspect AI logs (`shardscope import inspect`, tracer/inspect_log.py).
INSPECT_EVAL_ID: Final = "shardscope.inspect.eval_id"  # the log's eval id
INSPECT_SAMPLE_ID: Final = "shardscope.inspect.sample_id"
INSPECT_EPOCH: Final = "shardscope.inspect.epoch"  # Inspect's epoch (from 1); the seed is epoch - 1
INSPECT_SCORES: Final = "shardscope.inspect.scores"  # JSON: every scorer's Score
INSPECT_LIMIT: Final = "shardscope.inspect.limit"  # the limit the sample hit (tokens, messages, ...)
INSPECT_CACHE: Final = "shardscope.inspect.cache"  # read | write: the call came from Inspect's cache
