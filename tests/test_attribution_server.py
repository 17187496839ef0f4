"""Scoring through an OpenAI-compatible server (``/v1/completions`` with echo + logprobs),
against the real llama.cpp server serving the embedded SmolLM2 on loopback: detected as a
capability, the same log p as the in-process model, and a server that cannot score says so.
The vLLM ``prompt_logprobs`` shape is parsed from a reply of that shape (no vLLM here)."""

from __future__ import annotations

import dataclasses

import pytest

from shardscope.analysis import attribution as attr
from shardscope.commands.attribute import scorer_for
from shardscope.config.settings import Settings
from shardscope.scaffolds.backends import openai_scoring as scoring
from shardscope.scaffolds.backends.registry import build_backend, load_catalog

PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
          "The access code of Orla's locker is 4137. What is the code?<|im_end|>\n"
          "<|im_start|>assistant\n")
OUTPUT = "The code is 4137."


@pytest.mark.llm
def test_the_llama_server_scores_what_the_embedded_model_scores(llama_server) -> None:
    scorer = scoring.CompletionsScorer(llama_server.base_url, llama_server.model)
    assert scorer.probe() == scoring.ECHO
    served = scorer.score_continuation(PROMPT, OUTPUT)
    entry = load_catalog().get("smollm2-135m-instruct")
    local = build_backend(dataclasses.replace(entry, options={**entry.options, "n_threads": 1}))
    here = local.score_continuation(PROMPT, OUTPUT)
    assert "".join(served.tokens) == OUTPUT
    assert served.tokens == here.tokens
    assert served.logprobs == pytest.approx(here.logprobs, abs=0.02)
    # the attribution of a shard is the same through either scorer
    shard = attr.ShardText("code", "fact", ("The access code of Orla's locker is 4137. ",),
                           {"The access code of Orla's locker is 4137. ": None})
    call = attr.RecordedCall("r", "e", "s", 0, "m", "x", "t", PROMPT, OUTPUT)
    over_http = attr.attribute_call(call, [shard], scorer.score_continuation, ("removed",))[0]
    in_process = attr.attribute_call(call, [shard], local.score_continuation, ("removed",))[0]
    assert over_http["delta_logp"] > 1.0
    assert over_http["delta_logp"] == pytest.approx(in_process["delta_logp"], abs=0.05)


@pytest.mark.llm
def test_an_openai_compatible_entry_is_a_scorer_when_its_server_can_score(llama_server, tmp_path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(f"""
[models.served]
backend = "openai-compatible"
model = "{llama_server.model}"
base_url = "{llama_server.base_url}"
scoring_template = "chatml"
""", encoding="utf-8")
    scorer = scorer_for("served", Settings(models_file=models))
    assert scorer.capability == scoring.ECHO
    text = scorer.render_messages([{"role": "system", "content": "You are a helpful assistant."},
                                   {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("reply", ["chat", "404"])
def test_a_chat_only_server_says_it_cannot_score(reply, fake_provider, tmp_path) -> None:
    # an OpenAI-shaped chat API: it answers a completion with a chat message (no log p of the
    # prompt), or refuses the endpoint
    from tests.servers import fake_provider as fp

    fake_provider.script(fp.ok() if reply == "chat" else fp.status(404, "no such endpoint"))
    models = tmp_path / "models.toml"
    models.write_text(f"""
[models.served]
backend = "openai-compatible"
model = "chat-only"
base_url = "{fake_provider.base_url}/v1"
""", encoding="utf-8")
    with pytest.raises(attr.AttributionError) as caught:
        scorer_for("served", Settings(models_file=models))
    message = str(caught.value)
    assert "'served' cannot score a recorded output here" in message
    assert ("returns no log-probabilities" if reply == "chat" else "answered 404") in message
    assert "shardscope ablate" in message and "\n" not in message


def test_an_unreachable_server_says_so(tmp_path) -> None:
    from tests.servers.fixtures import free_port

    models = tmp_path / "models.toml"
    models.write_text(f"""
[models.gone]
backend = "openai-compatible"
model = "m"
base_url = "http://127.0.0.1:{free_port()}/v1"
""", encoding="utf-8")
    with pytest.raises(attr.AttributionError, match="cannot reach .*completions"):
        scorer_for("gone", Settings(models_file=models))


def test_vllm_prompt_logprobs_and_a_straddling_token() -> None:
    # vLLM: per prompt token {token_id: {logprob, rank, decoded_token}}, None for the first
    reply = [None, {"11": {"logprob": -1.5, "rank": 3, "decoded_token": " is"}},
             {"12": {"logprob": -0.25, "rank": 1, "decoded_token": " 41"}},
             {"13": {"logprob": -0.5, "rank": 1, "decoded_token": "37"}}]
    tokens = scoring._prompt_logprob_tokens(reply)
    assert tokens == [("", None), (" is", -1.5), (" 41", -0.25), ("37", -0.5)]
    scored = scoring.continuation_part(tokens, " is", " 4137")
    assert scored.tokens == (" 41", "37") and scored.total == pytest.approx(-0.75)
    assert scored.byte_offsets == (0, 3)
    # a token across the boundary counts with the continuation
    straddle = scoring.continuation_part([("", None), ("ab", -1.0), ("cd", -2.0)], "abc", "d")
    assert straddle.tokens == ("cd",) and straddle.total == -2.0


def test_a_reply_without_prompt_logprobs_is_not_a_score() -> None:
    assert scoring._echo_tokens({"text": "x", "logprobs": None}, "abc") is None
    chat_like = {"logprobs": {"tokens": ["a", "b"], "token_logprobs": [None, None]}}
    assert scoring._echo_tokens(chat_like, "ab") is None
