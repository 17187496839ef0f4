"""Locating shards in a recorded input is exact, and a shard that is not there is reported
(never skipped); deltas, actions and per-model summaries from scored rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shardscope.analysis import attribution as attr
from shardscope.scaffolds.tasks.instantiate import render_prompt
from shardscope.scaffolds.tasks.loader import get_suite


@dataclass(frozen=True)
class Counted:
    """A stand-in score for the pure functions: -1 per output byte, +10 if 'KEY' is in the input."""

    total: float
    evaluated_tokens: int
    logprobs: tuple[float, ...]

    def over_bytes(self, start: int, end: int) -> float:
        return self.total * (end - start) / max(len(self.logprobs), 1)


def counted(prompt: str, output: str) -> Counted:
    total = -float(len(output)) + (10.0 if "KEY" in prompt else 0.0)
    return Counted(total, len(prompt), tuple([-1.0] * len(output.encode())))


def test_every_exact_occurrence_is_found_and_removed() -> None:
    prompt = "a KEY=7. b. KEY=7. c"
    assert attr.locate(prompt, "KEY=7.") == [(2, 8), (12, 18)]
    shard = attr.ShardText("k", "fact", ("KEY=7.",), {"KEY=7.": "KEY=9."})
    assert attr.ablated_input(prompt, shard, "removed") == ("a  b.  c", 2, "scored")
    assert attr.ablated_input(prompt, shard, "replaced") == ("a KEY=9. b. KEY=9. c", 2, "scored")


def test_a_shard_not_in_the_input_is_reported_not_skipped() -> None:
    shard = attr.ShardText("k", "fact", ("KEY=7.",), {"KEY=7.": None})
    assert attr.ablated_input("key = 7", shard, "removed") == (None, 0, "not_found")  # exact only
    assert attr.ablated_input("KEY=7.", shard, "replaced") == (None, 1, "no_replacement")
    rows = pd.DataFrame(attr.attribute_call(
        attr.RecordedCall("r", "e", "s", 0, "m", "x", "t", "nothing here", "out"),
        [shard, attr.ShardText("rows", "rows", (), {}, "a query")], counted))
    assert list(rows.status) == ["not_found", "not_found", "unlocatable", "unlocatable"]
    assert rows.delta_logp.isna().all()
    summary = attr.attribution_summary(rows)
    assert list(summary.not_found) == [1, 1, 0, 0] and list(summary.unlocatable) == [0, 0, 1, 1]
    assert (summary.episodes == 0).all() and summary["mean"].isna().all()  # not a zero


def test_shipped_fact_shards_are_found_in_their_rendered_prompt() -> None:
    suite = get_suite("arithmetic")
    task = suite.tasks[0]
    prompt = task.prompt.format(**{s.name: s.content for s in task.shards if s.kind == "fact"})
    texts = [t for t in attr.shard_texts(task) if t.kind == "fact"]
    assert texts
    for shard in texts:
        new, count, status = attr.ablated_input(prompt, shard, "removed")
        assert status == "scored" and count >= 1 and new is not None and shard.texts[0] not in new


def test_action_span_is_the_tool_call_or_the_final_answer() -> None:
    out = 'Thought: add.\n<tool_call>\n{"name": "add"}\n</tool_call>'
    start, end = attr.action_span(out)
    assert out.encode()[start:end].decode().startswith("<tool_call>")
    start, end = attr.action_span("I think so. Final Answer: 5")
    assert b"I think so. Final Answer: 5"[start:end] == b"Final Answer: 5"
    assert attr.action_span("just text") == (0, 9)


def test_deltas_sum_over_steps_and_summarize_per_model() -> None:
    shard = attr.ShardText("k", "fact", ("KEY",), {"KEY": "LOCK"})
    rows = []
    for episode in range(4):
        for step in range(2):
            call = attr.RecordedCall("r", f"e{episode}", f"s{episode}{step}", step, "m", "x",
                                     f"t{episode % 2}", "the KEY is here", "answer")
            rows += attr.attribute_call(call, [shard], counted)
    frame = pd.DataFrame(rows)
    assert np.allclose(frame.delta_logp, 10.0)
    per_episode = attr.episode_deltas(frame)
    assert np.allclose(per_episode.delta_logp, 20.0) and set(per_episode.steps) == {2}
    summary = attr.attribution_summary(frame, "delta_logp")
    row = summary[summary["mode"] == "removed"].iloc[0]
    assert (row.episodes, row.tasks, row["mean"]) == (4, 2, pytest.approx(20.0))
    assert attr.top_shard_rate(frame, "k", value="delta_logp")["m"] == 1.0


def _profile_rows() -> pd.DataFrame:
    """Two models, 4 tasks x 2 shards: model a's action depends on every shard by ~5 nats,
    model b's by ~1; scored rows as attribute writes them."""
    rows = []
    for model, size in (("a", 5.0), ("b", 1.0)):
        for task in range(4):
            for k, shard in enumerate(("x", "y")):
                delta = size + 0.1 * task - 0.2 * k
                rows.append({"model": model, "suite": "s", "task_id": f"t{task}",
                             "episode_id": f"{model}{task}", "span_id": f"{model}{task}",
                             "shard": shard, "mode": "removed", "status": "scored",
                             "delta_action_logp": delta, "delta_logp": delta})
    rows.append({**rows[0], "shard": "z", "status": "not_found", "delta_action_logp": np.nan})
    return pd.DataFrame(rows)


def test_model_profiles_pool_a_models_shards_with_task_clustered_intervals() -> None:
    profiles = attr.model_profiles(_profile_rows()).set_index("model")
    assert list(profiles.cells) == [8, 8] and list(profiles.tasks) == [4, 4]  # not_found left out
    assert profiles.loc["a", "mean"] == pytest.approx(5.05)
    assert profiles.loc["a", "ci_low"] < 5.05 < profiles.loc["a", "ci_high"]
    assert profiles.loc["a", "top_shard"] == "x"
    text = attr.clearest_difference(profiles.reset_index())
    assert text is not None and text.startswith("removing one shard of a task moves a's")
    assert "b's by 1.05" in text


def test_overlapping_intervals_are_said_to_overlap() -> None:
    rows = _profile_rows()
    rows.loc[rows.model == "b", "delta_action_logp"] += 3.9
    text = attr.clearest_difference(attr.model_profiles(rows))
    assert text is not None and "a's log p" in text and "b's least" in text
    assert text.endswith("at 4 tasks their 95% intervals overlap")
    assert attr.clearest_difference(attr.model_profiles(rows[rows.model == "a"])) is None


def test_a_removed_fact_leaves_the_prompt_an_ablated_episode_is_sent() -> None:
    # Outcome ablation sends the prompt with the fact's gap tidied (no double space, no
    # leading space) or its declared `removed` text in place: scoring uses that same input.
    task = get_suite("arithmetic").tasks[0]
    first = task.shards[0]
    task = replace(task, shards=(replace(first, params={**first.params, "removed": "Alda has sheep."}),
                                 *task.shards[1:]))
    sent = render_prompt(task, None, None)
    recorded = f"<|im_start|>user\n{sent}<|im_end|>\n<|im_start|>assistant\nFinal Answer: 12"
    facts = [t for t in attr.shard_texts(task) if t.kind == "fact"]
    assert len(facts) == 2
    for text in facts:
        target = task.shard(text.shard)
        for mode in ("removed", "replaced"):
            new, count, status = attr.ablated_input(recorded, text, mode)
            assert (status, count) == ("scored", 1)
            assert new == recorded.replace(sent, render_prompt(task, target, mode))
            assert new is not None and "  " not in new and "\n " not in new
            assert str(target.content) not in new
    removed, _, _ = attr.ablated_input(recorded, facts[0], "removed")
    assert removed is not None and "Alda has sheep. At the market" in removed


def test_a_fact_outside_its_task_prompt_is_still_found_verbatim() -> None:
    task = get_suite("arithmetic").tasks[0]
    text = next(t for t in attr.shard_texts(task) if t.kind == "fact")
    quoted = f"earlier: {task.shards[0].content} later"
    assert attr.ablated_input(quoted, text, "removed") == ("earlier:  later", 1, "scored")


def test_humaneval_examples_whose_lines_end_in_spaces_are_found(tmp_path: Path) -> None:
    # HumanEval's examples shard keeps the docstring's trailing spaces; the prompt an episode
    # is sent drops them (tidy), so the shard's own text is not there verbatim: the whole
    # rendered prompt stands for it, and the ablated input is the prompt an ablated episode
    # is sent. (Measured: 5 of 15 examples shards of 16 problems were not_found before.)
    from shardscope.scaffolds.tasks import humaneval

    humaneval.write(humaneval.convert(), tmp_path)
    suite = get_suite("humaneval", tmp_path)
    trailing = [t for t in suite.tasks for s in t.shards if s.kind == "fact"
                and any(line != line.rstrip() for line in str(s.content).splitlines())]
    assert len(trailing) >= 10
    for task in trailing:
        sent = render_prompt(task, None, None)
        recorded = f"<|im_start|>user\n{sent}<|im_end|>\n<|im_start|>assistant\n"
        for text in (t for t in attr.shard_texts(task) if t.kind == "fact"):
            target = task.shard(text.shard)
            for mode in ("removed", "replaced"):
                new, count, status = attr.ablated_input(recorded, text, mode)
                assert (status, count) == ("scored", 1), (task.id, text.shard)
                assert new == recorded.replace(sent, render_prompt(task, target, mode))


def _tithe_input(frame: str) -> tuple[str, str]:
    """arith-010 as a model saw it after four calculator calls (tithes 25, 31, 18, 42 of
    harvests 257, 312, 189, 425), each result shown in ``frame``."""
    suite = get_suite("arithmetic")
    task = suite.task("arith-010")
    prompt = render_prompt(task, None, None)
    turns = "".join(
        f'<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{h} // 10"}}}}\n'
        f"</tool_call>\n" + frame.format(r)
        for h, r in (("257", "25"), ("312", "31"), ("189", "18"), ("425", "42")))
    return prompt, f"system: use the calculator\nuser: {prompt}\nassistant: {turns}"


def test_every_result_of_a_tool_is_ablated_and_only_where_it_is_a_result() -> None:
    # a tool_result shard is the tool's every result (outcome ablation's tool returns the
    # replacement to every call); its digits also stand in the task ("25" in "257 bushels")
    # and in the model's own calls, which are not the result
    task = get_suite("arithmetic").task("arith-010")
    results = {"calculator": ["25", "31", "18", "42"]}
    (shard,) = [t for t in attr.shard_texts(task, results) if t.kind == "tool_result"]
    for frame in ("<tool_response>\n{}\n</tool_response>", "Observation: {}\n"):
        prompt, recorded = _tithe_input(frame)
        new, count, status = attr.ablated_input(recorded, shard, "replaced")
        assert (status, count) == ("scored", 4)
        expected = recorded
        for r in results["calculator"]:
            expected = expected.replace(frame.format(r), frame.format("118"))
        assert new == expected
        assert new is not None and prompt in new and "257 // 10" in new  # the task and calls stay
        removed, count, status = attr.ablated_input(recorded, shard, "removed")
        assert (status, count) == ("scored", 4)
        assert removed == expected.replace(frame.format("118"), frame.format(""))


def test_a_bare_tool_result_is_still_found() -> None:
    task = get_suite("arithmetic").task("arith-010")
    (shard,) = [t for t in attr.shard_texts(task, {"calculator": ["116"]}) if t.kind == "tool_result"]
    assert attr.ablated_input("result=116;", shard, "replaced") == ("result=118;", 1, "scored")
    assert attr.ablated_input("nothing", shard, "removed") == (None, 0, "not_found")


def test_the_models_own_earlier_outputs_stay_as_recorded() -> None:
    """A shard the model quoted in an earlier step's output is ablated only where the task put
    it: the quote is the model's action, kept as recorded. A shard found only inside the
    model's outputs is not found; both the one-text and the several-parts paths do this."""
    said = "I read: KEY=7. So the key is 7."
    first = "user: a KEY=7. b\nassistant: "  # the input that produced ``said``
    prompt = f"{first}{said}\nuser: go on"
    guard = attr.output_spans(prompt, [(first, said)])
    assert guard == [(len(first), len(first) + len(said))]
    fact = attr.ShardText("k", "fact", ("KEY=7.",), {"KEY=7.": "KEY=9."})
    assert attr.ablated_input(prompt, fact, "removed") == (  # unguarded: the quote goes too
        "user: a  b\nassistant: I read:  So the key is 7.\nuser: go on", 2, "scored")
    assert attr.ablated_input(prompt, fact, "removed", guard) == (
        f"user: a  b\nassistant: {said}\nuser: go on", 1, "scored")
    assert attr.ablated_input(prompt, fact, "replaced", guard) == (
        f"user: a KEY=9. b\nassistant: {said}\nuser: go on", 1, "scored")
    only = f"assistant: {said}"
    assert attr.ablated_input(only, fact, "removed", attr.output_spans(only, [("assistant: ", said)])
                              ) == (None, 0, "not_found")
    # an output that repeats the task's own text is found after the input it answered, never
    # in the task: a parroting model's step-0 output "KEY=7." guards only its own copy
    parrot = f"{first}KEY=7.\nuser: go on"
    assert attr.output_spans(parrot, [(first, "KEY=7.")]) == [(len(first), len(first) + 6)]
    assert attr.ablated_input(parrot, fact, "removed", attr.output_spans(parrot, [(first, "KEY=7.")])
                              ) == ("user: a  b\nassistant: KEY=7.\nuser: go on", 1, "scored")
    # an output the input does not hold verbatim (a tool call rendered anew) is not guarded
    assert attr.output_spans(prompt, [(first, '{"name": "calculator"}')]) == []
    # a tool result, several parts: its framed form where the tool returned it, and the
    # model's echo of the same frame kept
    echo = "<tool_response>\n25\n</tool_response> was the answer"
    before = "<tool_response>\n25\n</tool_response>\nassistant: "
    framed = f"{before}{echo}\nuser: 257 bushels"
    task = get_suite("arithmetic").task("arith-010")
    (shard,) = [t for t in attr.shard_texts(task, {"calculator": ["25"]}) if t.kind == "tool_result"]
    assert shard.parts, shard
    new, occurrences, status = attr.ablated_input(framed, shard, "removed",
                                                  attr.output_spans(framed, [(before, echo)]))
    assert (status, occurrences) == ("scored", 1)
    assert new == f"<tool_response>\n\n</tool_response>\nassistant: {echo}\nuser: 257 bushels"


def test_an_episodes_later_step_keeps_the_earlier_output_in_its_ablated_input() -> None:
    """attribute_episode passes each call the outputs of the calls before it: step 1's
    ablated input is step 0's ablated input, step 0's output as recorded, and what step 1 adds."""
    seen: list[str] = []

    def scorer(prompt: str, output: str) -> Counted:
        seen.append(prompt)
        return counted(prompt, output)

    first_out = "KEY=7. is what I was told"
    p0 = "Fact: KEY=7.\nQ?"
    p1 = f"{p0}\n{first_out}\nObservation: ok\n"
    calls = [attr.RecordedCall("r", "e", f"s{i}", i, "m", "x", "t", p, o)
             for i, (p, o) in enumerate([(p0, first_out), (p1, "Final Answer: 7")])]
    shard = attr.ShardText("k", "fact", ("KEY=7.",), {"KEY=7.": "KEY=9."})
    rows = pd.DataFrame(attr.attribute_episode(calls, [shard], scorer, ("removed",)))
    assert list(rows.occurrences) == [1, 1] and (rows.status == "scored").all()
    assert seen[2:] == ["Fact: \nQ?", f"Fact: \nQ?\n{first_out}\nObservation: ok\n"]


def test_a_document_shard_is_located_and_replaced_by_its_edits() -> None:
    """docs-001's `history` document: found in a read_doc result, removed, or replaced by the
    suite's edit (the founding year 1071 -> 1083), every other line kept."""
    task = get_suite("docs").task("docs-001")
    (shard,) = attr.shard_texts(task)
    (doc,) = shard.texts
    prompt = f"user: {task.prompt}\n<tool_response>\n{doc}\n</tool_response>\n"
    replaced, count, status = attr.ablated_input(prompt, shard, "replaced")
    assert (count, status) == (1, "scored") and replaced is not None
    assert "founded in the year 1083" in replaced and "founded in the year 1071" not in replaced
    assert len(replaced) == len(prompt)  # one four-digit year for another
    assert attr.ablated_input(prompt, shard, "removed") == (
        f"user: {task.prompt}\n<tool_response>\n\n</tool_response>\n", 1, "scored")
