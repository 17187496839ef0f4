"""The embedded models through the ``local`` backend, for real: a few tokens each, traced into
a real DuckDB store. SmolLM2 (tiny instruct), Qwen2.5-Coder (calls tools as text), Gemma-3
(a base model with no chat template)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest

from shardscope.scaffolds.backends.errors import BadRequestError, CallTimeoutError
from shardscope.scaffolds.backends.local import SPIN_TURNS, llama_thread
from shardscope.scaffolds.backends.registry import build_backend, load_catalog, open_model
from shardscope.scaffolds.backends.traced import RetryPolicy
from shardscope.scaffolds.types import GenerationConfig, Message, ToolSpec
from tests.servers.backend_helpers import rows

pytestmark = pytest.mark.llm

CONFIG = GenerationConfig(temperature=0.0, max_tokens=12, seed=3)
QUESTION = [Message("system", "You are a helpful assistant."), Message("user", "What is the capital of France?")]
ADD = ToolSpec(
    "add",
    "Add two integers a and b and return the sum.",
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
     "required": ["a", "b"]},
)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(None)


def test_smollm2_streams_tokens_into_the_store(catalog, smollm2_path, tracing, db_path) -> None:
    model = open_model(catalog.get("smollm2-135m-instruct"), tracing)
    output = asyncio.run(model.generate(QUESTION, (), CONFIG))
    tracing.shutdown()

    assert output.text.strip()  # (SmolLM2 sometimes answers in French: no content check)
    assert output.finish_reason in {"stop", "length"} and 1 <= output.usage.output_tokens <= 12
    assert output.raw_request["prompt"].endswith("<|im_start|>assistant\n")
    assert output.raw_request["sha256"] == catalog.get("smollm2-135m-instruct").options["sha256"]
    (row,) = rows(db_path, "SELECT * FROM llm_calls")
    assert (row["provider"], row["operation"], row["model"]) == ("llama_cpp", "chat", "smollm2-135m-instruct")
    assert (row["request_model"], row["response_model"]) == ("SmolLM2-135M-Instruct", smollm2_path.name)
    assert (row["input_tokens"], row["output_tokens"]) == (output.usage.input_tokens, output.usage.output_tokens)
    assert row["streamed"] is True and row["tokens_per_second"] > 0 and row["time_to_first_token_s"] > 0
    (kind,) = rows(db_path, "SELECT kind FROM spans WHERE span_type = 'llm_call'")
    assert kind["kind"] in {"INTERNAL", "SpanKind.INTERNAL"}  # in-process: not a CLIENT call
    tokens = rows(db_path, "SELECT token, offset_ms, logprob FROM token_events ORDER BY token_index")
    assert "".join(t["token"] for t in tokens) == output.text
    assert [t["offset_ms"] for t in tokens] == sorted(t["offset_ms"] for t in tokens)
    assert all(t["logprob"] is None for t in tokens)  # logprobs are off unless asked for


def test_logprobs_are_a_per_run_option(catalog, smollm2_path, tracing, db_path) -> None:
    entry = catalog.get("smollm2-135m-instruct")
    model = open_model(entry, tracing, logprobs=True, top_logprobs=3)
    output = asyncio.run(model.generate(QUESTION, (), GenerationConfig(temperature=0.0, max_tokens=4, seed=3)))
    tracing.shutdown()

    stored = rows(db_path, "SELECT token, logprob, top_logprobs FROM token_events ORDER BY token_index")
    assert len(stored) == len(output.tokens) >= 1
    for token in stored:
        alternatives = json.loads(token["top_logprobs"])
        assert token["logprob"] <= 0 and len(alternatives) >= 3
        assert max(a["logprob"] for a in alternatives) >= token["logprob"] - 1e-6
    # logits_all costs a separate (slower) instance; the default one is untouched.
    assert model.backend.load() is not build_backend(entry).load()


def test_a_model_is_loaded_once_per_process(catalog, smollm2_path) -> None:
    entry = catalog.get("smollm2-135m-instruct")
    assert build_backend(entry).load() is build_backend(entry).load()


def test_the_event_loop_stays_free_while_tokens_are_computed(catalog, smollm2_path) -> None:
    backend = build_backend(catalog.get("smollm2-135m-instruct"))
    backend.load()

    async def main() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await backend.generate(QUESTION, (), GenerationConfig(temperature=0.0, max_tokens=24, seed=1))
        done.set()
        await task
        return ticks

    # Ticks are counted only until generate() returns; a blocked loop would count none. (How
    # many a loaded machine fits in is not a property of the backend: no ratio to the clock.)
    assert asyncio.run(main()) >= 3


def test_a_timed_out_generation_stops_and_frees_the_model(catalog, smollm2_path, tracing) -> None:
    model = open_model(catalog.get("smollm2-135m-instruct"), tracing, retry=RetryPolicy(max_attempts=1))
    loaded = model.backend.load()
    story = [Message("user", "Write a long story about the sea.")]
    long = GenerationConfig(temperature=0.0, max_tokens=400, seed=1, timeout_s=0.2)
    with pytest.raises(CallTimeoutError):
        asyncio.run(model.generate(story, (), long))
    # The one llama.cpp thread runs this once the abandoned generation has given the model up;
    # by then it must have stopped early, not sampled its 400 tokens.
    evaluated = llama_thread().submit(lambda: loaded.llama.n_tokens).result(timeout=300)
    prompt = model.backend._render(loaded, story, ())
    prompt_tokens = len(loaded.llama.tokenize(prompt.text.encode(), add_bos=prompt.add_bos, special=True))
    assert evaluated < prompt_tokens + 400, (evaluated, prompt_tokens)
    output = asyncio.run(model.generate(QUESTION, (), CONFIG))
    assert output.text  # the model answers again


def test_qwen_calls_a_tool_in_text_and_gets_a_real_tool_call(catalog, tracing, db_path) -> None:
    model = open_model(catalog.get("qwen2.5-coder-0.5b-instruct"), tracing)
    assert model.capabilities.tools is True
    conversation = [Message("system", "You are a helpful assistant."),
                    Message("user", "What is 17 + 25? Use the add tool.")]
    config = GenerationConfig(temperature=0.0, max_tokens=48, seed=1)
    first = asyncio.run(model.generate(conversation, [ADD], config))

    assert "<tools>" in first.raw_request["prompt"]  # Qwen's own template rendered the tools
    (call,) = first.tool_calls
    assert (call.name, call.arguments, call.ok) == ("add", {"a": 17, "b": 25}, True)
    assert first.finish_reason == "tool_calls" and "<tool_call>" not in first.text
    assert "add" in first.raw_response["text"]  # the raw answer is kept (Qwen-0.5B writes bare JSON)

    conversation += [first.message, Message("tool", "42", tool_call_id=call.id, name="add")]
    second = asyncio.run(model.generate(conversation, [ADD], config))
    tracing.shutdown()
    # The call and its result go back the way Qwen's template writes them (what the model does
    # next is the model's business: this 0.5B one often calls again).
    prompt = second.raw_request["prompt"]
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 17, "b": 25}}\n</tool_call>' in prompt
    assert "<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>" in prompt
    assert second.text or second.tool_calls
    calls = rows(db_path, "SELECT finish_reasons, output_messages FROM llm_calls ORDER BY started_at")
    assert json.loads(calls[0]["finish_reasons"]) == ["tool_call"]  # the conventions' value on the span
    parts = json.loads(calls[0]["output_messages"])[0]["parts"]
    assert {"type": "tool_call", "id": call.id, "name": "add", "arguments": {"a": 17, "b": 25}} in parts


def test_gemma_base_model_continues_a_transcript(catalog, tracing, db_path) -> None:
    model = open_model(catalog.get("gemma-3-270m"), tracing)
    assert (model.capabilities.chat_template, model.capabilities.tools) == (False, False)
    prompt = [Message("user", "Question: What is the capital of France?\nAnswer:")]
    output = asyncio.run(model.generate(prompt, (), GenerationConfig(temperature=0.0, max_tokens=6, seed=1)))
    with pytest.raises(BadRequestError, match="takes no tool specs"):
        asyncio.run(model.backend.generate(prompt, [ADD], CONFIG))
    tracing.shutdown()

    assert output.raw_request["rendering"] == "transcript"
    assert output.raw_request["prompt"] == prompt[0].content  # no chat markup, no [INST]
    assert "Paris" in output.text
    (row,) = rows(db_path, "SELECT operation, provider FROM llm_calls")
    assert (row["operation"], row["provider"]) == ("text_completion", "llama_cpp")


# Loads SmolLM2 through the backend in a fresh process (libgomp reads its settings once, when
# llama.cpp is loaded) with OpenMP's verbose environment display on, and reports how long
# idle threads spin: GOMP_SPINCOUNT is 300000 by default.
_SPIN_PROBE = """
import sys
from shardscope.scaffolds.backends.registry import build_backend, load_catalog
backend = build_backend(load_catalog(None).get("smollm2-135m-instruct"))
backend.load()
print("loaded", file=sys.stderr)
"""


def _spincount(extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    env.update(extra_env, OMP_DISPLAY_ENV="VERBOSE")
    done = subprocess.run([sys.executable, "-c", _SPIN_PROBE], env=env, capture_output=True,
                          text=True, timeout=600, check=True)
    assert "loaded" in done.stderr
    found = re.search(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr)
    assert found, done.stderr[-2000:]
    return found.group(1)


def test_llama_threads_spin_briefly_then_sleep(smollm2_path) -> None:
    # 300,000 spinning turns starved their team mate on a busy 2-core machine (3-16x slower).
    assert _spincount({}) == str(SPIN_TURNS) == "1000"


def test_a_wait_policy_or_spin_count_the_user_set_is_kept(smollm2_path) -> None:
    assert _spincount({"OMP_WAIT_POLICY": "PASSIVE"}) == "0"
    assert _spincount({"GOMP_SPINCOUNT": "20000"}) == "20000"
