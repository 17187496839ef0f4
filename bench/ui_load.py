"""UI data loading on a large store: each page's loaders against ``SELECT count(*) FROM spans``.

Generates (or reuses, with ``--store PATH``) a store of about 1,000,000 spans, ~20,000
episodes, through the real tracing pipeline (``setup_tracing`` + ``Tracing.span``, the same
span shapes and attributes as the runner: run, episodes, steps, LLM calls with streamed
token events carrying logprobs, tool calls). Then, for every page of the app, it times
exactly the ``shardscope.tracer.queries`` calls the page makes in its default state (cold: no Streamlit
cache, a fresh ``Store`` object each round, the page's calls sharing one connection opened
for them as in the app: ``Store.session``), and the same for a plain
``SELECT count(*) FROM spans`` through the same read path (one opening, one query).
Rounds alternate page and baseline; medians are compared.

One line per page, ``<page>: <ms> ms (x<ratio>)``; the last line is
``ui_load_ratio: <the worst page's ratio>``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries.overview import episode_cube
from shardscope.tracer.queries.runs import store_summary
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.spans import Tracing
from shardscope.tracer.store import Store

MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m",
          "gpt-4o-mini", "claude-haiku")
SCAFFOLDS = ("react-tools", "react-text")
SUITES = ("arithmetic", "village")
TASKS_PER_SUITE = 100
OUTCOMES = ("success", "failure", "protocol_error", "budget_exhausted", "error")
SYSTEM = "You are a careful assistant solving a task with tools. Reply 'Final Answer: <answer>'."
TOKENS = ("I", " should", " add", " the")


def _outcome(model: int, task: int, seed: int) -> str:
    skill = 0.85 - 0.15 * model
    draw = ((task * 7919 + seed * 104729 + model * 31) % 1000) / 1000
    if draw < skill:
        return "success"
    return OUTCOMES[1 + (task + seed + model) % 4]


def _episode(tracing: Tracing, suite: str, task: int, scaffold: str, model: int, seed: int) -> None:
    outcome = _outcome(model, task, seed)
    steps = 9 + (task * 3 + seed + model) % 9  # 9..17 steps, 13 on average
    task_id = f"{suite[:5]}-{task:03d}"
    # Random-looking ids, as the runner's uuid4 ones: no help from DuckDB's min/max zone maps.
    episode_id = hashlib.blake2b(f"{suite}{task}{scaffold}{model}{seed}".encode(), digest_size=8).hexdigest()
    prompt = f"Task {task_id}: what is {task} + {seed}? Use the tools, then answer."
    attrs = {
        A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT, A.GEN_AI_AGENT_NAME: scaffold,
        A.GEN_AI_PROVIDER_NAME: "bench", A.EPISODE_ID: episode_id, A.SUITE_NAME: suite,
        A.TASK_ID: task_id, A.SCAFFOLD_NAME: scaffold, A.SCAFFOLD_HASH: "ab" * 32,
        A.MODEL_ID: MODELS[model], A.SEED: seed,
        A.EPISODE_KEY: f"{suite}/{task_id}/{scaffold}/{MODELS[model]}/seed{seed}",
    }
    with tracing.inherit({A.EPISODE_ID: episode_id, A.MODEL_ID: MODELS[model]}):
        with tracing.span(f"invoke_agent {scaffold}", SpanType.EPISODE, attrs) as span:
            conversation = [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
            for index in range(steps):
                _step(tracing, index, index == steps - 1, conversation, MODELS[model])
            span.set_many({
                A.EPISODE_OUTCOME: outcome, A.EPISODE_SCORE: float(outcome == "success"),
                A.EPISODE_STEPS: steps, A.EPISODE_FINAL_ANSWER: f"{task + seed}",
                A.EPISODE_ERROR: None if outcome in ("success", "failure") else f"{outcome} at the end",
            })
            if outcome == "error":
                span.fail("server_error", "backend down after 4 attempts")


def _step(tracing: Tracing, index: int, last: bool, conversation: list[dict[str, Any]],
          model: str) -> None:
    fed_in = conversation[-2:] if index else conversation
    with tracing.inherit({A.STEP_INDEX: index}):
        with tracing.span(f"step {index}", SpanType.STEP, {A.STEP_INDEX: index, A.STEP_INPUT: fed_in}) as step:
            _llm(tracing, conversation, model, last)
            step.set(A.STEP_OUTPUT, "Final Answer: 5" if last else "calling add twice")
            if last:
                step.set(A.STEP_ACTION, {"type": "final", "answer": "5"})
                return
            step.set(A.STEP_ACTION, {"type": "tool", "tool": "add", "arguments": {"a": 2, "b": 3}})
            for call in range(2):
                with tracing.span("execute_tool add", SpanType.TOOL_CALL, {
                    A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL, A.GEN_AI_TOOL_NAME: "add",
                    A.GEN_AI_TOOL_CALL_ID: f"call-{index}-{call}",
                    A.GEN_AI_TOOL_CALL_ARGUMENTS: {"a": 2, "b": 3},
                }) as tool:
                    tool.set_many({A.GEN_AI_TOOL_CALL_RESULT: "5", A.TOOL_OK: True})
            # What the model sees next time: its tool calls and their results (as TracedModel
            # records them, the whole conversation goes into every call's input messages).
            conversation.append({"role": "assistant", "parts": [
                {"type": "text", "content": "calling add twice"},
                {"type": "tool_call", "id": f"call-{index}", "name": "add", "arguments": {"a": 2, "b": 3}}]})
            conversation.append({"role": "tool", "parts": [
                {"type": "tool_call_response", "id": f"call-{index}", "response": "5"}]})


def _llm(tracing: Tracing, conversation: list[dict[str, Any]], model: str, last: bool) -> None:
    with tracing.span(f"chat {model}", SpanType.LLM_CALL, {
        A.GEN_AI_OPERATION_NAME: A.OP_CHAT, A.GEN_AI_PROVIDER_NAME: "bench",
        A.GEN_AI_REQUEST_MODEL: model, A.GEN_AI_REQUEST_TEMPERATURE: 0.0,
        A.GEN_AI_REQUEST_MAX_TOKENS: 256, A.LLM_STREAMED: True,
        A.GEN_AI_SYSTEM_INSTRUCTIONS: [{"type": "text", "content": SYSTEM}],
        A.GEN_AI_INPUT_MESSAGES: conversation,
    }) as span:
        for i, text in enumerate(TOKENS):
            span.token(i, text, 12.5 * (i + 1), -0.05 * (i + 1))
        out = "Final Answer: 5" if last else "calling add twice"
        span.set_many({
            A.GEN_AI_RESPONSE_MODEL: model, A.GEN_AI_USAGE_INPUT_TOKENS: 120,
            A.GEN_AI_USAGE_OUTPUT_TOKENS: len(TOKENS), A.LLM_ATTEMPTS: 1,
            A.GEN_AI_RESPONSE_FINISH_REASONS: ["stop" if last else "tool_calls"],
            A.GEN_AI_OUTPUT_MESSAGES: [{"role": "assistant", "parts": [{"type": "text", "content": out}],
                                        "finish_reason": "stop"}],
            A.LLM_COST_USD: 0.0001 if "gpt" in model or "claude" in model else None,
            A.LLM_RAW_REQUEST: {"model": model, "messages": conversation, "tools": ["add"]},
            A.LLM_RAW_RESPONSE: {"text": out, "tool_calls": [] if last else ["add", "add"]},
        })


def generate(path: Path, seeds: int) -> None:
    """Write the bench store: one finished run, and one still running (its run span open)."""
    tracing = setup_tracing(Settings(db=path, flush_interval=0.5))
    runs = (("bench-finished", range(seeds - 2)), ("bench-running", range(seeds - 2, seeds)))
    for run_id, run_seeds in runs:
        planned = len(SUITES) * TASKS_PER_SUITE * len(SCAFFOLDS) * len(MODELS) * len(run_seeds)
        if run_id == "bench-running":
            planned *= 2  # half way through
        with tracing.inherit({A.RUN_ID: run_id}):
            with tracing.span(f"run start {run_id}", SpanType.RUN_START,
                              {A.RUN_NAME: run_id, A.RUN_PLANNED_EPISODES: planned}):
                pass
            scope = tracing.span(f"run {run_id}", SpanType.RUN, {A.RUN_NAME: run_id})
            run_span = scope.__enter__()
            for seed in run_seeds:
                for model in range(len(MODELS)):
                    for suite in SUITES:
                        for task in range(TASKS_PER_SUITE):
                            for scaffold in SCAFFOLDS:
                                _episode(tracing, suite, task, scaffold, model, seed)
            if run_id == "bench-running":
                scope.abandon()  # a run still writing: its run span has not ended
            else:
                run_span.set(A.RUN_STATUS, "finished")
                scope.__exit__(None, None, None)
    tracing.shutdown()


def replicate(base: Path, out: Path, copies: int) -> None:
    """``out``: ``base`` with its spans and events ``copies`` times over, each copy's trace,
    span, parent, episode and run ids suffixed ``-k`` (so 10 copies of the 1M-span store are a
    10M-span store of 200,000 episodes in 20 runs). Rows are copied by SQL, not regenerated
    through the pipeline (~20 min per 1M spans here). A v2 base is then migrated in place by
    ``Store.upgrade`` (the migration's back-fill, timed); a v3 base has its typed rows
    derived again by the same back-fill."""
    import shutil

    import duckdb

    from shardscope.tracer.schema import stored_version
    from shardscope.tracer.typed import TYPED_TABLES, backfill

    shutil.copyfile(base, out)
    con = duckdb.connect(str(out))
    started = time.perf_counter()
    ids = {"trace_id", "span_id", "parent_span_id", "episode_id", "run_id"}
    for table in ("spans", "span_events"):
        names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        for k in range(1, copies):
            select = ", ".join(f"{n} || '-{k}' AS {n}" if n in ids else n for n in names)
            con.execute(f"INSERT INTO {table} SELECT {select} FROM {table} "
                        "WHERE NOT contains(span_id, '-')")
            print(f"  {table} copy {k}: {time.perf_counter() - started:.0f}s", flush=True)
    con.execute("CHECKPOINT")
    version = stored_version(con)
    if version >= 3:
        for table in TYPED_TABLES:
            con.execute(f"DELETE FROM {table}")
        backfill(con)
    con.close()
    print(f"replicated {base} x{copies} into {out} in {time.perf_counter() - started:.0f}s")
    if version < 3:
        started = time.perf_counter()
        Store(out).upgrade()
        print(f"migrated {out} from schema v{version}: {time.perf_counter() - started:.0f}s")


def _baseline(store: Store) -> None:
    from shardscope.tracer.queries.frames import read_frame

    read_frame(store, "SELECT count(*) FROM spans")


def _time(fn: Callable[[Store], Any], path: Path) -> float:
    store = Store(path)
    store.upgrade()  # once per Store object in the app too (cached resource)
    start = time.perf_counter()
    fn(store)
    return time.perf_counter() - start


def measure(path: Path, rounds: int) -> float:
    from bench.page_loads import page_loaders

    pages = page_loaders()
    times: dict[str, list[float]] = {name: [] for name in pages}
    base: list[float] = []
    for _ in range(rounds):
        for name, loader in pages.items():
            base.append(_time(_baseline, path))
            times[name].append(_time(loader, path))
    baseline = statistics.median(base)
    print(f"baseline SELECT count(*) FROM spans: {baseline * 1000:.1f} ms")
    worst = 0.0
    for name, samples in times.items():
        ratio = statistics.median(samples) / baseline
        worst = max(worst, ratio)
        print(f"{name}: {statistics.median(samples) * 1000:.1f} ms (x{ratio:.1f})")
    live = statistics.median(_time(_live_refresh, path) for _ in range(rounds))
    print(f"(info) overview redrawn while one run writes, finished runs' cubes cached: "
          f"{live * 1000:.1f} ms (x{live / baseline:.1f})")
    return worst


def _live_refresh(store: Store) -> None:
    """What the Overview reads on a live refresh: the summary, and the running run's cube."""
    summary = store_summary(store)
    episode_cube(store, [r.run_id for r in summary.running])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="reuse (or create) the bench store here")
    parser.add_argument("--seeds", type=int, default=10, help="2,000 episodes per seed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replicate", type=Path, metavar="BASE",
                        help="build --store from this store's spans, --copies times over")
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or Path(tmp) / "ui-bench.duckdb"
        if args.replicate and not path.exists():
            replicate(args.replicate, path, args.copies)
        if not path.exists():
            started = time.perf_counter()
            generate(path, args.seeds)
            print(f"generated {path} in {time.perf_counter() - started:.0f}s")
        from shardscope.tracer.queries.frames import read_frame

        counts = read_frame(Store(path), "SELECT (SELECT count(*) FROM spans) spans, "
                            "(SELECT count(*) FROM span_events) events, "
                            "(SELECT count(*) FROM spans WHERE span_type = 'episode') episodes")
        print("store: " + ", ".join(f"{c} {int(counts[c][0]):,}" for c in counts.columns))
        worst = measure(path, args.rounds)
    print(f"ui_load_ratio: {worst:.1f}")


if __name__ == "__main__":
    main()
