"""The real ``openai`` SDK and LiteLLM's ``openai/`` provider against ``python -m
llama_cpp.server`` serving the embedded SmolLM2 on loopback: chat, streaming, logprobs, usage,
and the chat spans in DuckDB. No internet; a real model answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from shardscope.scaffolds.backends.registry import availability, load_catalog, open_model
from shardscope.scaffolds.types import GenerationConfig, Message
from tests.servers.backend_helpers import rows

pytestmark = pytest.mark.llm

MESSAGES = [Message("system", "You are a helpful assistant."), Message("user", "Name a color.")]
CONFIG = GenerationConfig(temperature=0.0, max_tokens=8, seed=7, timeout_s=120)


@pytest.fixture
def catalog(llama_server, tmp_path: Path):
    path = tmp_path / "models.toml"
    path.write_text(f"""
[models.llama-server]
backend = "openai-compatible"
model = "{llama_server.model}"
base_url = "{llama_server.base_url}"
tools = false
logprobs = true
price_input_per_million = 0.5
price_output_per_million = 1.5

[models.llama-server-litellm]
backend = "litellm"
model = "openai/{llama_server.model}"
base_url = "{llama_server.base_url}"
""")
    return load_catalog(path)


def test_the_endpoint_is_available_and_its_provider_is_not_openai(catalog) -> None:
    entry = catalog.get("llama-server")
    assert availability(entry)[0] is True
    assert entry.provider == "openai_compatible"  # an entry names vllm, ollama, llama_cpp
    assert catalog.get("llama-server-litellm").provider == "openai"


@pytest.mark.parametrize("model_id", ["llama-server", "llama-server-litellm"])
def test_chat_through_the_sdk(model_id, catalog, llama_server, tracing, db_path) -> None:
    model = open_model(catalog.get(model_id), tracing)
    output = asyncio.run(model.generate(MESSAGES, (), CONFIG, stream=False))
    tracing.shutdown()

    assert output.text.strip()
    assert output.finish_reason in {"stop", "length"}
    assert output.usage.input_tokens > 5 and 1 <= output.usage.output_tokens <= 8
    assert output.response_id.startswith("chatcmpl")
    (row,) = rows(db_path, "SELECT * FROM llm_calls")
    assert (row["provider"], row["request_model"], row["model"]) == (
        "openai_compatible" if model_id == "llama-server" else "openai", llama_server.model, model_id)
    assert (row["input_tokens"], row["output_tokens"]) == (output.usage.input_tokens, output.usage.output_tokens)
    assert (row["response_id"], row["streamed"], row["attempts"]) == (output.response_id, False, 1)
    assert (row["temperature"], row["max_tokens"], row["request_seed"]) == (0.0, 8, 7)
    assert json.loads(row["output_messages"])[0]["parts"][0]["content"] == output.text
    assert json.loads(row["raw_request"])["messages"][1] == {"role": "user", "content": "Name a color."}
    if model_id == "llama-server":
        expected = (output.usage.input_tokens * 0.5 + output.usage.output_tokens * 1.5) / 1e6
        assert row["cost_usd"] == pytest.approx(expected)


@pytest.mark.parametrize("model_id", ["llama-server", "llama-server-litellm"])
def test_streaming_records_each_token_and_time_to_first_token(model_id, catalog, tracing, db_path) -> None:
    model = open_model(catalog.get(model_id), tracing)
    output = asyncio.run(model.generate(MESSAGES, (), CONFIG, stream=True))
    tracing.shutdown()

    tokens = rows(db_path, "SELECT token, offset_ms, logprob FROM token_events ORDER BY token_index")
    assert 1 <= len(tokens) <= 8
    assert "".join(t["token"] for t in tokens) == output.text
    offsets = [t["offset_ms"] for t in tokens]
    assert offsets == sorted(offsets) and offsets[0] > 0
    (row,) = rows(db_path, "SELECT * FROM llm_calls")
    assert row["streamed"] is True
    assert 0 < row["time_to_first_token_s"] * 1000 <= offsets[-1] + 1
    assert row["time_to_first_token_s"] * 1000 == pytest.approx(offsets[0], abs=1.0)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_logprobs_and_top_alternatives(stream, catalog, tracing, db_path) -> None:
    model = open_model(catalog.get("llama-server"), tracing, logprobs=True, top_logprobs=2)
    output = asyncio.run(model.generate(MESSAGES, (), CONFIG, stream=stream))
    tracing.shutdown()

    assert output.tokens and all(t.logprob is not None and t.logprob <= 0 for t in output.tokens)
    assert all(len(t.top_logprobs) == 2 for t in output.tokens)
    first = output.tokens[0]
    assert max(a.logprob for a in first.top_logprobs) >= first.logprob - 1e-6  # the best is on top
    assert json.loads(rows(db_path, "SELECT raw_request FROM llm_calls")[0]["raw_request"])["top_logprobs"] == 2
    if stream:  # the store's token view has them, queryable by SQL
        stored = rows(db_path, "SELECT logprob, top_logprobs FROM token_events ORDER BY token_index")
        assert [t["logprob"] for t in stored] == pytest.approx([t.logprob for t in output.tokens])
        assert all(len(json.loads(t["top_logprobs"])) == 2 for t in stored)
