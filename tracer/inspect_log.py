"""Inspect AI eval logs → shardscope runs, episodes, steps, LLM and tool calls.

An eval log (one task on one model, ``.eval`` or ``.json``, read through ``inspect_ai.log``,
the optional ``inspect`` extra) becomes a run; every sample × epoch an episode (suite = the
Inspect task, task_id = the sample id, seed = epoch − 1 so that epoch 1 pairs with seed 0,
score and outcome from the first scorer); each ``ModelEvent`` a step with its ``llm_call``
span (messages in the GenAI ``parts[]`` shape, tokens, timing, retries as attempts, the raw
call) and each ``ToolEvent`` a ``tool_call`` span in the step of the model call that asked
for it. The scaffold is the Inspect plan (its solvers and their parameters, hashed), so
"same scaffold" is provable across Inspect runs as it is across shardscope runs.

Ids are derived from the log's own ids (eval, sample uuid, event uuid): importing a log again
produces the same spans, and the store keeps the first copy (:func:`new_rows_only`).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shardscope.config.errors import ShardscopeError
from shardscope.tracer import attributes as A
from shardscope.tracer.encoding import BATCH_SCHEMA, EVENT_SCHEMA, encode_attributes, to_json
from shardscope.tracer.redact import Redactor
from shardscope.tracer.store import Store

SUPPORTED_VERSIONS = (1, 2)  # EvalLog.version values this importer maps
SCOPE = "shardscope.import.inspect"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXTRA_HINT = "install the inspect extra: pip install 'shardscope[inspect]'"
# Inspect's stop reasons → the GenAI conventions' finish reasons
FINISH_REASONS = {"stop": "stop", "max_tokens": "length", "model_length": "length",
                  "tool_calls": "tool_call", "content_filter": "content_filter",
                  "unknown": "error"}
RUN_STATUS = {"success": "finished", "cancelled": "interrupted", "error": "failed",
              "started": "interrupted"}


class InspectLogError(ShardscopeError):
    """An Inspect log that cannot be read or mapped (truncated, unknown version, not a log)."""


def read_log(path: Path) -> Any:
    """The EvalLog at ``path`` with its samples, or one clear error."""
    if not path.is_file():
        raise InspectLogError(f"{path}: no such file")
    if path.suffix not in (".eval", ".json"):
        raise InspectLogError(f"{path}: not an Inspect log (expected a .eval or .json file)")
    _precheck(path)
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise InspectLogError(f"reading Inspect logs needs inspect_ai: {EXTRA_HINT}") from None
    try:
        log = read_eval_log(str(path))
    except Exception as exc:  # inspect_ai raises ValueError, zipfile and pydantic errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "version" in first.lower():
            raise InspectLogError(f"{path}: {first} (this shardscope maps Inspect log versions "
                                  f"{', '.join(map(str, SUPPORTED_VERSIONS))})") from None
        raise InspectLogError(f"{path}: not a readable Inspect log, truncated or damaged "
                              f"({type(exc).__name__}: {first[:200]})") from None
    if log.version not in SUPPORTED_VERSIONS:
        raise InspectLogError(f"{path}: Inspect log version {log.version} is not supported "
                              f"(this shardscope maps versions "
                              f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    return log


_VERSION = re.compile(rb'^\s*\{\s*"version"\s*:\s*(\d+)')


def _precheck(path: Path) -> None:
    """What can be told without inspect_ai: a .eval log is a whole zip archive; a .json log
    (Inspect writes ``version`` first) is of a version this importer maps."""
    if path.suffix == ".eval":
        try:
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError) as exc:
            raise InspectLogError(f"{path}: not a readable Inspect log, truncated or damaged "
                                  f"(not a complete zip archive: {exc})") from None
        return
    with path.open("rb") as head:
        match = _VERSION.match(head.read(256))
    if match and int(match.group(1)) not in SUPPORTED_VERSIONS:
        raise InspectLogError(f"{path}: Inspect log version {int(match.group(1))} is not "
                              "supported (this shardscope maps versions "
                              f"{', '.join(map(str, SUPPORTED_VERSIONS))})")


# --- small helpers ---------------------------------------------------------------------
def _hex(*parts: object, size: int) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:size]


def _ns(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int((value - _EPOCH) // timedelta(microseconds=1)) * 1000


def _dump(value: Any) -> Any:
    """A pydantic model (or anything) as plain JSON-able data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    return value


def score_value(value: Any) -> float | None:
    """An Inspect score value as a number (C/I/P/N, yes/no, numbers), as Inspect's own
    ``value_to_float`` maps it; None for values that are not scalar."""
    from inspect_ai.scorer import value_to_float

    if isinstance(value, (list, dict)) or value is None:
        return None
    return float(value_to_float()(value))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [getattr(c, "text", None) for c in content or ()]
    return "".join(t for t in texts if isinstance(t, str))


def message_parts(message: Any) -> dict[str, Any]:
    """An Inspect ChatMessage in the GenAI ``{role, parts[]}`` shape the views read."""
    parts: list[dict[str, Any]] = []
    if message.role == "tool":
        parts.append({"type": "tool_call_response", "id": message.tool_call_id,
                      "response": _text(message.content)})
        return {"role": "tool", "parts": parts}
    text = _text(message.content)
    if text:
        parts.append({"type": "text", "content": text})
    for call in getattr(message, "tool_calls", None) or ():
        parts.append({"type": "tool_call", "id": call.id, "name": call.function,
                      "arguments": call.arguments})
    return {"role": message.role, "parts": parts}


def _tool_definitions(tools: Any) -> str:
    return to_json([{"type": "function", "name": t.name, "description": t.description,
                     "parameters": _dump(t.parameters)} for t in tools or ()])


# --- rows ------------------------------------------------------------------------------
@dataclass
class Rows:
    """Span and event rows in the store's batch shapes (tracer/encoding.py)."""

    redactor: Redactor
    spans: dict[str, list[Any]] = field(default_factory=lambda: {f.name: [] for f in BATCH_SCHEMA})
    events: dict[str, list[Any]] = field(default_factory=lambda: {f.name: [] for f in EVENT_SCHEMA})
    resource: str = ""

    def span(self, trace_id: str, span_id: str, parent: str | None, name: str, kind: str,
             start: int, end: int, attributes: dict[str, Any], error: str | None = None,
             links: list[dict[str, Any]] | None = None) -> None:
        c = self.spans
        end = max(end, start)
        values = (trace_id, span_id, parent, self.redactor.text(name), kind, start // 1000,
                  end // 1000, start, end, (end - start) / 1e6, "ERROR" if error else "UNSET",
                  self.redactor.text(error) if error else None,
                  encode_attributes(self.redactor.value(attributes)), 0,
                  to_json(links) if links else None, self.resource, SCOPE, None, 0, 0, 0, None)
        for column, value in zip(c, values, strict=True):
            c[column].append(value)

    def tables(self, writer_id: str) -> tuple[pa.Table, pa.Table]:
        self.spans["writer_id"] = [writer_id] * len(self.spans["span_id"])
        return (pa.table(self.spans, schema=BATCH_SCHEMA),
                pa.table(self.events, schema=EVENT_SCHEMA))


@dataclass(frozen=True)
class Plan:
    """The eval's identity as a shardscope run and scaffold."""

    run_id: str
    suite: str
    model: str
    provider: str
    scaffold: str
    scaffold_hash: str
    scaffold_params: dict[str, Any]


def plan_of(log: Any) -> Plan:
    ev = log.eval
    steps = [{"solver": s.solver, "params": s.params} for s in (log.plan.steps if log.plan else ())]
    scaffold = "inspect:" + "+".join(s["solver"] for s in steps) if steps else "inspect"
    identity = {"steps": steps, "config": _dump(log.plan.config) if log.plan else {},
                "task": ev.task, "task_version": ev.task_version}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    model = str(ev.model)
    return Plan(run_id=f"inspect-{ev.eval_id}", suite=str(ev.task), model=model,
                provider=model.split("/", 1)[0] if "/" in model else "inspect",
                scaffold=scaffold, scaffold_hash=digest, scaffold_params=identity)


def convert(log: Any, path: Path, redactor: Redactor) -> Rows:
    """Every span of one eval log: the run, and each sample's episode."""
    plan = plan_of(log)
    rows = Rows(redactor)
    rows.resource = to_json({"service.name": "inspect_ai", "shardscope.import.source": str(path)})
    run_trace = _hex("run", plan.run_id, size=32)
    run_span = _hex("run-span", plan.run_id, size=16)
    samples = list(log.samples or ())
    times = [t for s in samples for t in (_ns(s.started_at), _ns(s.completed_at)) if t]
    created = _ns(log.eval.created) or 0
    start, end = min(times, default=created), max(times, default=created)
    run_attrs = {A.RUN_ID: plan.run_id, A.RUN_NAME: f"inspect {plan.suite} {plan.model}"}
    config = {"source": "inspect_ai", "log": str(path), "task": plan.suite, "models": [plan.model],
              "scaffolds": [plan.scaffold], "epochs": log.eval.config.epochs,
              "inspect_version": log.eval.packages.get("inspect_ai"), "status": log.status}
    rows.span(run_trace, _hex("run-start", plan.run_id, size=16), run_span,
              f"run start {plan.run_id}", "INTERNAL", start, start,
              {**run_attrs, A.SPAN_TYPE: A.SpanType.RUN_START,
               A.RUN_PLANNED_EPISODES: _planned(log, samples), A.RUN_CONFIG: to_json(config),
               A.RUN_RESUMED: False})
    rows.span(run_trace, run_span, None, f"run {plan.run_id}", "INTERNAL", start, end,
              {**run_attrs, A.SPAN_TYPE: A.SpanType.RUN,
               A.RUN_STATUS: RUN_STATUS.get(log.status, "finished")})
    link = [{"trace_id": run_trace, "span_id": run_span, "attributes": {}}]
    for sample in samples:
        _episode(rows, plan, log, sample, link)
    return rows


def _planned(log: Any, samples: list[Any]) -> int:
    results = log.results
    if results is not None and results.total_samples:
        return int(results.total_samples)
    return len(samples)


def _first_score(sample: Any) -> tuple[float | None, Any]:
    for score in (sample.scores or {}).values():
        return score_value(score.value), score
    return None, None


def _outcome(sample: Any, score: float | None) -> str:
    if sample.error is not None:
        return A.Outcome.ERROR
    if sample.limit is not None:
        return A.Outcome.BUDGET_EXHAUSTED
    return A.Outcome.SUCCESS if score is not None and score >= 1.0 else A.Outcome.FAILURE


def _episode(rows: Rows, plan: Plan, log: Any, sample: Any, link: list[dict[str, Any]]) -> None:
    key_parts = (plan.run_id, sample.id, sample.epoch, getattr(sample, "uuid", None))
    episode_id = _hex("episode", *key_parts, size=16)
    trace_id = _hex("trace", *key_parts, size=32)
    span_id = _hex("episode-span", *key_parts, size=16)
    events = list(sample.events or ())
    stamps = [_ns(e.timestamp) for e in events]
    start = _ns(sample.started_at) or min((t for t in stamps if t), default=0)
    end = _ns(sample.completed_at) or max((t for t in stamps if t), default=start)
    if sample.total_time and not sample.completed_at:
        end = start + int(sample.total_time * 1e9)
    score, first = _first_score(sample)
    seed = int(sample.epoch) - 1
    model_events = [e for e in events if e.event == "model"]
    context = {A.RUN_ID: plan.run_id, A.EPISODE_ID: episode_id, A.MODEL_ID: plan.model}
    error = sample.error.message if sample.error is not None else None
    rows.span(trace_id, span_id, None, f"invoke_agent {plan.scaffold}", "INTERNAL", start, end, {
        **context, A.SPAN_TYPE: A.SpanType.EPISODE, A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT,
        A.GEN_AI_AGENT_NAME: plan.scaffold, A.GEN_AI_CONVERSATION_ID: episode_id,
        A.GEN_AI_PROVIDER_NAME: plan.provider, A.GEN_AI_REQUEST_MODEL: plan.model,
        A.EPISODE_KEY: f"{plan.suite}/{sample.id}/{plan.scaffold}@{plan.scaffold_hash[:12]}/"
                       f"{plan.model}/seed{seed}",
        A.SUITE_NAME: plan.suite, A.TASK_ID: str(sample.id), A.SCAFFOLD_NAME: plan.scaffold,
        A.SCAFFOLD_HASH: plan.scaffold_hash, A.SCAFFOLD_PARAMS: plan.scaffold_params,
        A.SEED: seed, A.EPISODE_OUTCOME: _outcome(sample, score), A.EPISODE_SCORE: score,
        A.EPISODE_STEPS: len(model_events), A.EPISODE_ERROR: error,
        A.EPISODE_FINAL_ANSWER: (sample.output.completion or None)
        if sample.output and error is None else None,
        A.EPISODE_CHECK_DETAIL: first.explanation if first is not None else None,
        A.INSPECT_EVAL_ID: log.eval.eval_id, A.INSPECT_SAMPLE_ID: str(sample.id),
        A.INSPECT_EPOCH: int(sample.epoch),
        A.INSPECT_SCORES: to_json({k: _dump(v) for k, v in (sample.scores or {}).items()}),
        A.INSPECT_LIMIT: sample.limit.type if sample.limit is not None else None,
    }, error=error, links=link)
    for index, (model_event, tool_events, step_end) in enumerate(_steps(events, end)):
        _step(rows, trace_id, span_id, context, index, model_event, tool_events, step_end,
              plan, is_last=index == len(model_events) - 1)


def _steps(events: list[Any], episode_end: int) -> Iterator[tuple[Any, list[Any], int]]:
    """Each model event with the tool events that follow it (until the next model event)."""
    steps: list[tuple[Any, list[Any]]] = []
    for event in events:
        if event.event == "model":
            steps.append((event, []))
        elif event.event == "tool" and steps:
            steps[-1][1].append(event)
    for i, (model_event, tools) in enumerate(steps):
        following = _ns(steps[i + 1][0].timestamp) if i + 1 < len(steps) else None
        ends = [_event_end(e) for e in (model_event, *tools)]
        yield model_event, tools, following or max([*ends, episode_end if i + 1 == len(steps)
                                                    else 0])


def _event_end(event: Any) -> int:
    start = _ns(event.timestamp) or 0
    if event.completed is not None:
        return _ns(event.completed) or start
    return start + int((event.working_time or 0) * 1e9)


def _action(output: Any, is_last: bool, error: str | None) -> dict[str, Any]:
    message = output.message if output and output.choices else None
    calls = list(getattr(message, "tool_calls", None) or ()) if message else []
    if calls:
        listed = [{"tool": c.function, "arguments": c.arguments} for c in calls]
        return {"type": "tool", "tool": calls[0].function, "arguments": calls[0].arguments,
                "calls": listed}
    if error:
        return {"type": "error"}
    text = output.completion if output else ""
    if text:
        return {"type": "final", "answer": text} if is_last else {"type": "note", "text": text}
    return {"type": "none"}


def _step(rows: Rows, trace_id: str, episode_span: str, context: dict[str, Any], index: int,
          event: Any, tools: list[Any], end: int, plan: Plan, *, is_last: bool) -> None:
    start = _ns(event.timestamp) or 0
    step_span = _hex("step", trace_id, index, size=16)
    step_ctx = {**context, A.STEP_INDEX: index}
    inputs = [message_parts(m) for m in event.input]
    previous = 0
    for i in range(len(inputs) - 1, -1, -1):  # what was new since the model last answered
        if inputs[i]["role"] == "assistant":
            previous = i + 1
            break
    output = event.output
    rows.span(trace_id, step_span, episode_span, f"step {index}", "INTERNAL", start, end, {
        **step_ctx, A.SPAN_TYPE: A.SpanType.STEP, A.STEP_INPUT: to_json(inputs[previous:]),
        A.STEP_OUTPUT: output.completion if output else "",
        A.STEP_ACTION: _action(output, is_last, event.error),
    })
    _llm_call(rows, trace_id, step_span, step_ctx, event, inputs, plan)
    for tool in tools:
        _tool_call(rows, trace_id, step_span, step_ctx, tool)


def _llm_call(rows: Rows, trace_id: str, parent: str, context: dict[str, Any], event: Any,
              inputs: list[dict[str, Any]], plan: Plan) -> None:
    start = _ns(event.timestamp) or 0
    output = event.output
    usage = output.usage if output else None
    config = event.config
    system = [p for m in inputs if m["role"] == "system" for p in m["parts"]]
    choices = output.choices if output else []
    attributes: dict[str, Any] = {
        **context, A.SPAN_TYPE: A.SpanType.LLM_CALL, A.GEN_AI_OPERATION_NAME: A.OP_CHAT,
        A.GEN_AI_PROVIDER_NAME: plan.provider, A.GEN_AI_REQUEST_MODEL: event.model,
        A.GEN_AI_RESPONSE_MODEL: output.model if output else None,
        A.GEN_AI_REQUEST_TEMPERATURE: config.temperature, A.GEN_AI_REQUEST_TOP_P: config.top_p,
        A.GEN_AI_REQUEST_MAX_TOKENS: config.max_tokens, A.GEN_AI_REQUEST_SEED: config.seed,
        A.GEN_AI_RESPONSE_FINISH_REASONS: [FINISH_REASONS.get(c.stop_reason, "error")
                                           for c in choices] or None,
        A.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens if usage else None,
        A.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens if usage else None,
        A.GEN_AI_SYSTEM_INSTRUCTIONS: to_json(system) if system else None,
        A.GEN_AI_INPUT_MESSAGES: to_json([m for m in inputs if m["role"] != "system"]),
        A.GEN_AI_OUTPUT_MESSAGES: to_json([
            {**message_parts(c.message),
             "finish_reason": FINISH_REASONS.get(c.stop_reason, "error")} for c in choices]),
        A.GEN_AI_TOOL_DEFINITIONS: _tool_definitions(event.tools) if event.tools else None,
        A.LLM_ATTEMPTS: (event.retries or 0) + 1,
        A.INSPECT_CACHE: event.cache,
    }
    if choices and choices[0].message.id:
        attributes[A.GEN_AI_RESPONSE_ID] = choices[0].message.id
    if event.call is not None:
        attributes[A.LLM_RAW_REQUEST] = to_json(event.call.request)
        attributes[A.LLM_RAW_RESPONSE] = to_json(event.call.response)
    if event.error:
        attributes[A.ERROR_TYPE] = "inspect_model_error"
    span_id = _hex("llm", trace_id, event.uuid or start, size=16)
    rows.span(trace_id, span_id, parent, f"chat {event.model}", "CLIENT", start,
              _event_end(event), {k: v for k, v in attributes.items() if v is not None},
              error=event.error)


def _tool_call(rows: Rows, trace_id: str, parent: str, context: dict[str, Any],
               event: Any) -> None:
    start = _ns(event.timestamp) or 0
    error = event.error.message if event.error is not None else None
    result = event.result if isinstance(event.result, str) else to_json(_dump(event.result))
    attributes: dict[str, Any] = {
        **context, A.SPAN_TYPE: A.SpanType.TOOL_CALL, A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL,
        A.GEN_AI_TOOL_NAME: event.function, A.GEN_AI_TOOL_CALL_ID: event.id,
        A.GEN_AI_TOOL_TYPE: "function", A.GEN_AI_TOOL_CALL_ARGUMENTS: to_json(event.arguments),
        A.GEN_AI_TOOL_CALL_RESULT: result, A.TOOL_OK: error is None,
        A.TOOL_TRUNCATED: event.truncated is not None,
    }
    if error is not None:
        attributes[A.TOOL_ERROR_MESSAGE] = error
        attributes[A.ERROR_TYPE] = event.error.type
    span_id = _hex("tool", trace_id, event.uuid or event.id, size=16)
    rows.span(trace_id, span_id, parent, f"execute_tool {event.function}", "INTERNAL", start,
              _event_end(event), attributes, error=error)


# --- into the store ---------------------------------------------------------------------
def new_rows_only(con: duckdb.DuckDBPyConnection, spans: pa.Table, events: pa.Table
                  ) -> tuple[pa.Table, pa.Table]:
    """The rows whose span the store does not hold yet (ids are derived from the log, so a
    re-imported log finds every span already there)."""
    con.register("_shardscope_import", spans.select(["trace_id", "span_id"]))
    try:
        stored = con.execute(
            "SELECT s.trace_id, s.span_id FROM spans s JOIN _shardscope_import i "
            "ON s.trace_id = i.trace_id AND s.span_id = i.span_id").fetchall()
    finally:
        con.unregister("_shardscope_import")
    if not stored:
        return spans, events
    known = {f"{t}/{s}" for t, s in stored}

    def keep(table: pa.Table) -> pa.Table:
        keys = pc.binary_join_element_wise(table["trace_id"], table["span_id"], "/")
        return table.filter(pc.invert(pc.is_in(keys, value_set=pa.array(sorted(known)))))

    return keep(spans), keep(events)


def store_rows(store: Store, rows: Rows, writer_id: str) -> tuple[int, int]:
    """Append the rows the store does not hold yet, in one transaction; returns (spans
    written, spans already there)."""
    from shardscope.tracer.sinks import _append

    spans, events = rows.tables(writer_id)
    with store.writer() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            fresh, fresh_events = new_rows_only(con, spans, events)
            if fresh.num_rows:
                _append(con, fresh, fresh_events)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return fresh.num_rows, spans.num_rows - fresh.num_rows
