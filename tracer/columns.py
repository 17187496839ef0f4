"""What each column of the public views means (``shardscope query --schema``).

One description per column name, shared by every view that has it, and a few overrides
where a name means something particular in one view."""

from __future__ import annotations

_CONTEXT = {
    "run_id": "The run (a `shardscope run`, `ablate` or `demo`) the row belongs to.",
    "episode_id": "The task attempt (one row of `episodes`).",
    "trace_id": "OpenTelemetry trace id (one trace per episode).",
    "span_id": "OpenTelemetry span id of the row's span.",
    "parent_span_id": "The enclosing span (a step for a call, the episode for a step).",
    "suite": "Task suite of the episode.",
    "task_id": "Task of the episode, within its suite.",
    "scaffold": "Scaffold (agent loop) of the episode: react-tools, react-text, plan-execute.",
    "scaffold_hash": "sha256 of the scaffold's code, prompts and parameters: equal hash, same scaffold.",
    "model": "Catalog id of the model (`shardscope models`).",
    "seed": "Seed of the episode (repeats of a task are seeds 0..N-1).",
    "ablation_shard": "The shard removed or replaced in this ablation episode; NULL for baselines.",
    "ablation_mode": "removed or replaced (ablation episodes); NULL for baselines.",
    "step_index": "Scaffold loop iteration within the episode, from 0.",
}
_COMMON = {
    "provider": "GenAI provider (gen_ai.provider.name): openai, anthropic, llama_cpp, ...",
    "request_model": "Model name sent to the provider (gen_ai.request.model).",
    "response_model": "Model name the provider answered with (gen_ai.response.model).",
    "input_tokens": "Input (prompt) tokens, as the provider counted them.",
    "output_tokens": "Output (completion) tokens, as the provider counted them.",
    "cost_usd": "Cost in US dollars from the catalog's prices; NULL when the model has none.",
    "llm_calls": "Model calls made.",
    "tool_calls": "Tool executions made.",
    "status_code": "Span status: OK, ERROR or UNSET.",
    "status_message": "Span status message (the error, when status_code is ERROR).",
    "error_type": "Error class (error.type), e.g. timeout, rate_limit, bad_arguments.",
    "error_message": "The error's message.",
    "started_at": "When it started (UTC).",
    "ended_at": "When it ended (UTC).",
    "duration_ms": "Wall time in milliseconds.",
    "time": "When the event happened (UTC).",
    "tool_name": "Tool called (gen_ai.tool.name).",
    "events_count": "Span events recorded on the span (streamed tokens, failed attempts).",
    "operation": "GenAI operation (gen_ai.operation.name): chat, execute_tool, invoke_agent.",
}
_BY_VIEW: dict[str, dict[str, str]] = {
    "episodes": {
        "outcome": "success, failure, protocol_error, budget_exhausted or error.",
        "score": "The checker's score, 0..1.",
        "steps": "Scaffold loop iterations taken.",
        "tool_errors": "Tool executions that failed.",
        "duration_s": "Wall time of the episode in seconds.",
        "error": "Why the episode errored (outcome error), or the checker's detail.",
        "final_answer": "The model's final answer, as the scaffold extracted it.",
        "episode_key": "Identity of the cell (suite, task, scaffold hash, model, seed, "
        "ablation): resume and baseline reuse match on it.",
        "ablation_kind": "Kind of the ablated shard (fact, doc, rows, file, ...).",
        "baseline_episode_key": "episode_key of the baseline this ablation episode is compared with.",
    },
    "steps": {
        "input": "What this iteration fed the model anew (prompt text or GenAI messages, JSON).",
        "output": "What the model wrote in this iteration.",
        "action": "What the step did, as JSON: {type, tool, arguments, calls, answer, plan, text}.",
        "action_type": "tool, final, plan, note, none (empty reply) or error (protocol broken).",
        "action_tool": "First tool called by the step (tool actions).",
        "protocol_error": "How the reply broke the scaffold's protocol; NULL when it did not.",
    },
    "llm_calls": {
        "response_id": "Provider's response id (gen_ai.response.id).",
        "temperature": "Sampling temperature sent (gen_ai.request.temperature).",
        "top_p": "top_p sent (gen_ai.request.top_p).",
        "max_tokens": "Output token limit of the call (gen_ai.request.max_tokens).",
        "request_seed": "Seed sent to the model (gen_ai.request.seed).",
        "finish_reasons": "Why generation stopped (JSON list): stop, length, tool_call, ...",
        "time_to_first_token_s": "Seconds to the first streamed chunk.",
        "attempts": "Attempts made (1 unless retried; failed ones are in llm_attempts).",
        "streamed": "Whether the call was streamed.",
        "tokens_per_second": "Output tokens per second of generation.",
        "system_instructions": "System prompt (gen_ai.system_instructions, JSON parts).",
        "input_messages": "Messages sent (gen_ai.input.messages, JSON).",
        "output_messages": "Messages received (gen_ai.output.messages, JSON).",
        "tool_call_errors": "Tool calls in the reply that could not be parsed (JSON).",
        "raw_request": "The request as sent to the provider (JSON, secrets redacted).",
        "raw_response": "The provider's response as received (JSON).",
    },
    "tool_calls": {
        "call_id": "Tool call id (gen_ai.tool.call.id).",
        "arguments": "Arguments as the model wrote them (JSON, or the raw text when malformed).",
        "result": "What the model was shown: the tool's output, or the error text for a failed call.",
        "ok": "Whether the tool ran and succeeded.",
        "truncated": "Whether the output was cut to the tool's size limit.",
    },
    "messages": {
        "direction": "input (sent to the model) or output (received).",
        "position": "Position of the message in the call's list, from 0.",
        "role": "system, user, assistant or tool.",
        "text": "The message's text parts, joined.",
        "parts": "All the message's parts (JSON): text, tool_call, tool_call_response.",
        "finish_reason": "Why generation stopped (output messages).",
    },
    "token_events": {
        "token_index": "Position of the token in the call's output, from 0.",
        "token": "The token's text.",
        "offset_ms": "Milliseconds from the call's start to this token.",
        "logprob": "Log probability of the token; NULL unless the run used --logprobs.",
        "top_logprobs": "The most likely alternatives with their logprobs (JSON); --logprobs only.",
    },
    "llm_attempts": {
        "attempt": "Attempt number, from 1.",
        "status_code": "HTTP status of the failed attempt, when there was one.",
        "retry_after_s": "Retry-After the provider asked for, in seconds.",
        "wait_s": "Seconds waited before the next attempt.",
        "duration_ms": "Wall time of the failed attempt in milliseconds.",
    },
    "runs": {
        "name": "The run's label (--name).",
        "status": "running, finished, interrupted or stale (its writer silent for over 60 s).",
        "planned_episodes": "Episodes the matrix planned.",
        "completed_episodes": "Episodes stored.",
        "successes": "Episodes with outcome success.",
        "errors": "Episodes with outcome error.",
        "last_activity_at": "Latest start, episode end or run end.",
        "resumes": "Times the run was resumed (--resume).",
        "config": "The run's matrix and settings (JSON).",
        "writer_heard_at": "When the process writing the run last wrote to the store.",
        "started_at": "When the run started (UTC).",
        "ended_at": "When the run ended (UTC); NULL while running or when it died.",
    },
}


def column_description(view: str, column: str) -> str | None:
    """What ``column`` of ``view`` means; None for a column we do not describe."""
    # a typed table (typed_llm_calls) has its view's columns
    by_view = _BY_VIEW.get(view) or _BY_VIEW.get(view.removeprefix("typed_"), {})
    return by_view.get(column) or _CONTEXT.get(column) or _COMMON.get(column)
