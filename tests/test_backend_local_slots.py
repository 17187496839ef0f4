"""Parallel slots of the ``local`` backend, for real: SmolLM2 through llama.cpp, N sequences
in one context against the same prompts one at a time; stop sequences, max_tokens and
cancellation per sequence; and a real `shardscope run --concurrency llama_cpp=4`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from shardscope.config.errors import ConfigError
from shardscope.scaffolds.backends import local
from shardscope.scaffolds.backends.local import LocalBackend
from shardscope.scaffolds.backends.registry import build_backend, load_catalog
from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, StreamChunk
from tests.test_cli_run_real import frame, shardscope

MODEL = "smollm2-135m-instruct"
TOPICS = ["a cat", "the sea", "a pilot", "fresh bread"]
TIMEOUT_S = 600  # generous: the machine's two cores are shared


def prompt(topic: str, ask: str = "Write a short poem about") -> list[Message]:
    return [Message("system", "You are a helpful assistant."), Message("user", f"{ask} {topic}.")]


def backend(slots: int | None = None) -> LocalBackend:
    entry = load_catalog(None).get(MODEL)
    options = {**entry.options, "n_threads": 1}
    if slots is not None:
        options["slots"] = slots
    built = build_backend(dataclasses.replace(entry, options=options))
    assert isinstance(built, LocalBackend)
    return built


def engine_of(model: LocalBackend) -> local.SlotEngine:
    (engine,) = [e for (_, slots, threads), e in local._engines.items()
                 if (slots, threads) == (model.slots, model.n_threads)]
    return engine


async def one_at_a_time(model: LocalBackend, calls: list[tuple[list[Message], GenerationConfig]]
                        ) -> list[ModelOutput]:
    return [await model.generate(messages, (), config) for messages, config in calls]


async def together(model: LocalBackend, calls: list[tuple[list[Message], GenerationConfig]]
                   ) -> list[ModelOutput]:
    return await asyncio.wait_for(
        asyncio.gather(*(model.generate(m, (), c) for m, c in calls)), TIMEOUT_S)


def same_answer(a: ModelOutput, b: ModelOutput) -> None:
    assert (b.text, b.finish_reason, b.usage) == (a.text, a.finish_reason, a.usage)
    assert b.raw_response["usage"] == a.raw_response["usage"]


@pytest.mark.llm
def test_greedy_slots_give_the_one_at_a_time_answers(smollm2_path: Path) -> None:
    config = GenerationConfig(temperature=0.0, max_tokens=40, seed=1)
    calls = [(prompt(t), config) for t in TOPICS]
    alone = asyncio.run(one_at_a_time(backend(), calls))
    slotted = backend(slots=4)
    batched = asyncio.run(together(slotted, calls))
    for a, b in zip(alone, batched, strict=True):
        same_answer(a, b)
        assert b.raw_request["slots"] == 4 and "slots" not in a.raw_request
        assert {k: v for k, v in b.raw_request.items() if k != "slots"} == a.raw_request
    engine = engine_of(slotted)
    # They really shared decode steps: more sequences than llama_decode calls.
    assert engine.sequences_decoded > 2 * engine.steps
    assert engine.busy() == 0


@pytest.mark.llm
def test_streamed_chunks_are_the_answer(smollm2_path: Path) -> None:
    model = backend(slots=2)
    config = GenerationConfig(temperature=0.0, max_tokens=30, seed=1)

    async def stream(topic: str) -> tuple[list[StreamChunk], ModelOutput]:
        chunks, final = [], None
        async for item in model.stream(prompt(topic), (), config):
            if isinstance(item, ModelOutput):
                final = item
            else:
                chunks.append(item)
        assert final is not None
        return chunks, final

    async def both() -> list[tuple[list[StreamChunk], ModelOutput]]:
        return await asyncio.wait_for(asyncio.gather(stream(TOPICS[0]), stream(TOPICS[1])),
                                      TIMEOUT_S)

    for chunks, final in asyncio.run(both()):
        assert len(chunks) > 1 and "".join(c.text for c in chunks) == final.text


@pytest.mark.llm
def test_stop_sequences_and_max_tokens_hold_per_sequence(smollm2_path: Path) -> None:
    free = GenerationConfig(temperature=0.0, max_tokens=40, seed=1)
    reference = asyncio.run(one_at_a_time(backend(), [(prompt(TOPICS[0]), free)]))[0].text
    stop = reference[len(reference) // 2:][:4]  # a piece from the middle of the free answer
    assert stop.strip(), f"no usable stop text in {reference!r}"
    calls = [
        (prompt(TOPICS[0]), dataclasses.replace(free, stop=(stop,))),
        (prompt(TOPICS[1]), dataclasses.replace(free, max_tokens=5)),
        (prompt(TOPICS[2]), free),
    ]
    alone = asyncio.run(one_at_a_time(backend(), calls))
    batched = asyncio.run(together(backend(slots=3), calls))
    for a, b in zip(alone, batched, strict=True):
        same_answer(a, b)
    stopped, short, _ = batched
    assert stopped.finish_reason == "stop" and stop not in stopped.text
    assert stopped.text == reference[:reference.index(stop)]
    assert (short.finish_reason, short.usage.output_tokens) == ("length", 5)


@pytest.mark.llm
def test_a_cancelled_request_frees_its_slot(smollm2_path: Path) -> None:
    model = backend(slots=2)
    long = GenerationConfig(temperature=0.0, max_tokens=400, seed=1)
    short = GenerationConfig(temperature=0.0, max_tokens=10, seed=1)
    finished: list[str] = []

    async def generate(name: str, messages: list[Message], config: GenerationConfig) -> ModelOutput:
        output = await model.generate(messages, (), config)
        finished.append(name)
        return output

    async def scene() -> tuple[ModelOutput, ModelOutput]:
        cancelled = model.stream(prompt("a storm", "Write a very long story about"), (), long)
        first = await cancelled.__anext__()  # generation is under way in slot 1
        assert isinstance(first, StreamChunk)
        keeps = asyncio.create_task(
            generate("long", prompt("a lighthouse", "Write a very long story about"), long))
        while engine_of(model).busy() < 2:  # both slots taken
            await asyncio.sleep(0.05)
        waiting = asyncio.create_task(generate("short", prompt(TOPICS[0]), short))
        await cancelled.aclose()  # the caller gives up: its slot must go to the waiting call
        return await asyncio.wait_for(asyncio.gather(keeps, waiting), TIMEOUT_S)

    kept, waited = asyncio.run(scene())
    assert kept.usage.output_tokens >= 100, "the long call ended too soon to tell"
    # The short call ran in the freed slot while the long one went on, not after it.
    assert finished == ["short", "long"]
    assert waited.usage.output_tokens <= 10 and waited.finish_reason in {"stop", "length"}
    assert engine_of(model).busy() == 0


def test_slots_must_be_a_positive_whole_number(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(f'[models.{MODEL}]\nbackend = "local"\nslots = 0\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="slots must be a whole number of at least 1, got 0"):
        load_catalog(models)


@pytest.mark.llm
@pytest.mark.slow
def test_a_real_matrix_runs_four_episodes_at_once(tmp_path: Path, smollm2_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    done = shardscope(tmp_path, "run", "--db", str(db), "-s", "arithmetic", "-m", MODEL,
                      "-a", "react-tools", "--limit", "4", "-p", "react-tools.max_steps=2",
                      "-p", "react-tools.max_tokens_per_call=32", "--concurrency", "llama_cpp=4",
                      "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    episodes = frame(db, "SELECT * FROM episodes")
    assert len(episodes) == 4 and episodes["episode_key"].is_unique
    assert episodes["task_id"].nunique() == 4 and not episodes["outcome"].eq("error").any()
    calls = frame(db, "SELECT * FROM llm_calls ORDER BY started_at")
    assert {json.loads(r)["slots"] for r in calls["raw_request"]} == {4}
    assert set(calls["episode_id"]) == set(episodes["episode_id"])
    # Episodes overlapped: some call started before the previous one ended.
    ends = (calls["started_at"] + pd.to_timedelta(calls["duration_ms"], unit="ms")).cummax().shift()
    assert (calls["started_at"].iloc[1:] < ends.iloc[1:]).any()
    (run,) = frame(db, "SELECT * FROM runs").itertuples()
    assert (run.status, run.planned_episodes, run.completed_episodes) == ("finished", 4, 4)
