"""Likelihood attribution: which shards a model's recorded output depends on, measured by the
model's own probabilities (after ContextCite, Cohen-Wang et al. 2024, and the agentic
attribution of Qian et al. 2026).

For each recorded LLM call, the input exactly as sent (the rendered prompt in the raw
request) and the output exactly as produced (the raw response text) are taken from the
store. Each shard of the episode's task is located in that input *exactly* (its text must
occur verbatim); the input is rebuilt with every occurrence removed, or replaced by the
shard's declared wrong value, and the *same* output is scored teacher-forced:

    delta = log p(output | original input) - log p(output | input without the shard)

summed over the action (the tool call block, or the final answer) and over the whole output.
A positive delta means the shard supported what the model did. A shard that cannot be
located gets a row saying why (``not_found``, ``unlocatable``): never skipped silently.
Costs: one forward pass per (call, shard, mode) instead of one episode per (shard, mode).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from shardscope.analysis.stats import estimate
from shardscope.config.errors import ShardscopeError
from shardscope.scaffolds.tasks.instantiate import declared_tools, render_prompt
from shardscope.scaffolds.tasks.model import Edit, Shard
from shardscope.scaffolds.tasks.suite import Task
from shardscope.scaffolds.tasks.world import apply_edits
from shardscope.scaffolds.types import ToolSpec

MODES = ("removed", "replaced")
_TOOL_CALL = re.compile(r"<tool_call>.*?(?:</tool_call>|$)", re.DOTALL)
_FINAL = re.compile(r"(?:Final Answer|Answer)\s*:", re.IGNORECASE)


class AttributionError(ShardscopeError):
    """Likelihood attribution cannot run on this input (the message says what to do)."""


class Scored(Protocol):
    """What a scorer returns (:class:`shardscope.scaffolds.backends.local_scoring.ScoredContinuation`)."""

    @property
    def total(self) -> float: ...

    @property
    def evaluated_tokens(self) -> int: ...

    @property
    def logprobs(self) -> tuple[float, ...]: ...

    def over_bytes(self, start: int, end: int) -> float: ...


Scorer = Callable[[str, str], Scored]  # (input, output) -> token log-probs of the output


@dataclass(frozen=True)
class ShardText:
    """Where a shard shows in an input: the text to find, and what replaces it."""

    shard: str
    kind: str
    texts: tuple[str, ...]  # any of these, verbatim (empty: the kind cannot be located)
    replacements: Mapping[str, str | None]  # text -> its replaced form (None: no replacement)
    why_unlocatable: str = ""
    removals: Mapping[str, str] = field(default_factory=dict)  # text -> its removed form ("")
    # Where set, the shard is several texts (a tool's results), each given as its forms in
    # order of preference: every one found is ablated, not only the first (``texts`` then
    # holds them all).
    parts: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class RecordedCall:
    """One recorded LLM call of a baseline episode."""

    run_id: str
    episode_id: str
    span_id: str
    step_index: int
    model: str
    suite: str
    task_id: str
    prompt: str
    output: str


def shard_texts(task: Task, tool_results: Mapping[str, Sequence[str]] | None = None) -> list[ShardText]:
    """Each shard of ``task`` as the texts that stand for it in a model's input.

    ``tool_results``: tool name -> the results it returned in the episode (for tool_result
    shards, whose text only exists in the recording)."""
    return [_shard_text(task, shard, tool_results or {}) for shard in task.shards]


def _shard_text(task: Task, shard: Shard, tool_results: Mapping[str, Sequence[str]]) -> ShardText:
    if shard.kind == "fact":
        return _fact_text(task, shard)
    if shard.kind == "document":
        doc = task.world.corpus.get(str(shard.params.get("doc")), "")
        return _edited(shard, (doc,) if doc else (), "the document is not in the suite's corpus")
    if shard.kind == "file":
        base = task.world.package_dir
        path = base / str(shard.params.get("path")) if base else None
        text = path.read_text(encoding="utf-8") if path and path.is_file() else ""
        return _edited(shard, (text,) if text else (), "the file is not in the suite's package")
    if shard.kind == "function":
        return _function_text(task, shard)
    if shard.kind == "tool_result":
        return _tool_result_text(shard, tool_results.get(str(shard.params.get("tool")), ()))
    return ShardText(shard.name, shard.kind, (), {},
                     f"{shard.kind} shards change what a query returns, not a text in the input")


def _fact_text(task: Task, shard: Shard) -> ShardText:
    """A fact shard stands first for the task's whole prompt, whose removed and replaced forms
    are the prompts an ablated episode is sent (the gaps a removed fact leaves tidied, a
    declared ``removed`` text put in its place): scoring then uses the input outcome ablation
    uses. Where the whole prompt is not in the input, the fact's own sentence stands for it.

    The whole prompt stands for a fact whose ``{placeholder}`` the prompt has, even where the
    fact's text is not in the rendered prompt verbatim: rendering tidies it (HumanEval's
    examples end lines in spaces that the rendered code block drops)."""
    text = shard.content or ""
    if not text:
        return ShardText(shard.name, shard.kind, (), {})
    wrong = None if shard.replacement is None else str(shard.replacement)
    whole = render_prompt(task, None, None)
    placed = text in whole or "{" + shard.name + "}" in task.prompt
    texts = (whole, text) if placed else (text,)
    replaced = None if wrong is None else render_prompt(task, shard, "replaced")
    return ShardText(shard.name, shard.kind, texts, {whole: replaced, text: wrong},
                     removals={whole: render_prompt(task, shard, "removed"),
                               text: str(shard.params.get("removed", ""))})


# How a tool's result stands in a model's input: in the Hermes / Qwen2.5 tool response
# (scaffolds.backends.local_prompt, and Qwen's own template), and after react-text's
# "Observation:". Found so, a result is not mistaken for the same digits elsewhere (a result
# "25" in the task's "257 bushels"); a result in neither frame is found bare.
_RESULT_FRAMES = ("<tool_response>\n{}\n</tool_response>", "Observation: {}\n")


def _tool_result_text(shard: Shard, results: Sequence[str]) -> ShardText:
    """A tool_result shard stands for every result the tool returned in the episode: each one
    is removed (left empty in its frame) or replaced by the shard's replacement, as outcome
    ablation's tool returns it for every call."""
    wrong = None if shard.replacement is None else str(shard.replacement)
    parts = tuple((*(f.format(r) for f in _RESULT_FRAMES), r) for r in dict.fromkeys(results) if r)
    replacements: dict[str, str | None] = {}
    removals: dict[str, str] = {}
    for forms in parts:
        for frame, form in zip((*_RESULT_FRAMES, "{}"), forms, strict=True):
            replacements[form] = None if wrong is None else frame.format(wrong)
            removals[form] = frame.format("")
    texts = tuple(t for forms in parts for t in forms)
    return ShardText(shard.name, shard.kind, texts, replacements,
                     "" if parts else "the tool returned nothing in this episode", removals, parts)


def _function_text(task: Task, shard: Shard) -> ShardText:
    """A function shard (a declared function's description, a parameter's description or
    hints, a whole distractor) stands for its function's line in the tool listing, and its
    removed and replaced forms for the line of the function outcome ablation offers instead
    (``declared_tools``); a removed distractor leaves no line."""
    name = shard.params.get("function")
    spec = next((f for f in task.declared.functions if f.name == name), None)
    if spec is None:
        return ShardText(shard.name, shard.kind, (), {},
                         f"the function {name!r} is not declared by the task")
    line = _tool_line(spec)

    def ablated(mode: str) -> str:
        offered = declared_tools(task.declared, shard, mode).functions
        return next((_tool_line(f) for f in offered if f.name == name), "")

    replaced = None if shard.replacement is None else ablated("replaced")
    return ShardText(shard.name, shard.kind, (line,), {line: replaced},
                     removals={line: ablated("removed")})


def _tool_line(spec: ToolSpec) -> str:
    """A function as the local backend lists it (one JSON object a line, after a newline:
    ``scaffolds.backends.local_prompt.tools_block``, Qwen2.5's / Hermes' tool listing)."""
    return "\n" + json.dumps(spec.as_json_schema_tool(), ensure_ascii=False)


def _edited(shard: Shard, texts: tuple[str, ...], missing: str) -> ShardText:
    edits = shard.replacement if isinstance(shard.replacement, tuple) else ()
    replacements: dict[str, str | None] = {}
    for text in texts:
        replacements[text] = _apply(text, edits) if edits else None
    return ShardText(shard.name, shard.kind, texts, replacements, "" if texts else missing)


def _apply(text: str, edits: Iterable[Edit]) -> str | None:
    try:
        return apply_edits(text, edits)
    except ValueError:
        return None


def locate(prompt: str, text: str) -> list[tuple[int, int]]:
    """Every non-overlapping exact occurrence of ``text`` in ``prompt``, as (start, end)."""
    spans, start = [], prompt.find(text) if text else -1
    while start >= 0:
        spans.append((start, start + len(text)))
        start = prompt.find(text, start + len(text))
    return spans


Span = tuple[int, int]  # [start, end) in an input


def output_spans(prompt: str, earlier: Sequence[tuple[str, str]]) -> list[Span]:
    """Where an episode's earlier outputs stand in ``prompt``, a later call's input: for each
    earlier call's (input, output), the output's first occurrence after the part of
    ``prompt`` that call's input shares with it (an output follows the input it answered, so
    the task's prompt before it is never taken for it, whatever the output repeats). An
    output the input does not hold verbatim (a tool call the chat template renders anew) is
    not found, and not guarded."""
    spans = []
    for before, output in earlier:
        if not output:
            continue
        start = prompt.find(output, _shared_prefix(before, prompt))
        if start >= 0:
            spans.append((start, start + len(output)))
    return spans


def _shared_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (character by character)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def ablated_input(prompt: str, shard: ShardText, mode: str, guarded: Sequence[Span] = ()
                  ) -> tuple[str | None, int, str]:
    """(``prompt`` with the shard removed or replaced, occurrences, status). The input is
    None when the shard is not there (status ``not_found``, ``unlocatable``) or has no
    replacement (``no_replacement``).

    ``guarded``: spans of ``prompt`` that stay as recorded, the model's own earlier outputs
    (:func:`output_spans`). What the model wrote is its action: a shard it quoted there is
    ablated only where the task's world put it (prompt, tool results), and a shard found only
    inside them is ``not_found``."""
    return ablate(prompt, shard, mode, guarded)[:3]


def ablate(prompt: str, shard: ShardText, mode: str, guarded: Sequence[Span] = ()
           ) -> tuple[str | None, int, str, list[Span]]:
    """:func:`ablated_input`, with the guarded spans as they stand in the new input (edits
    before them move them), for ablating another shard after this one."""
    kept = list(guarded)
    if not shard.texts:
        return None, 0, "unlocatable", kept
    if shard.parts:
        return _ablated_parts(prompt, shard, mode, kept)
    for text in shard.texts:
        spans = _open_spans(prompt, text, kept)
        if not spans:
            continue
        new = shard.removals.get(text, "") if mode == "removed" else shard.replacements.get(text)
        if new is None:
            return None, len(spans), "no_replacement", kept
        ablated, moved = _splice(prompt, [(a, b, new) for a, b in spans], kept)
        return ablated, len(spans), "scored", moved
    return None, 0, "not_found", kept


def _open_spans(prompt: str, text: str, guarded: Sequence[Span]) -> list[Span]:
    """:func:`locate` of ``text``, leaving out occurrences that overlap a guarded span."""
    return [(a, b) for a, b in locate(prompt, text)
            if not any(a < g_end and g_start < b for g_start, g_end in guarded)]


def _splice(prompt: str, edits: Sequence[tuple[int, int, str]], guarded: Sequence[Span]
           ) -> tuple[str, list[Span]]:
    """``prompt`` with each (ordered, non-overlapping) edit's span replaced by its text, and
    the guarded spans (which no edit overlaps) moved to where they now stand."""
    out, at = [], 0
    for start, end, new in edits:
        out += [prompt[at:start], new]
        at = end
    moved = [(a + shift, b + shift) for a, b in guarded
             for shift in [sum(len(new) - (end - start) for start, end, new in edits if end <= a)]]
    return "".join(out) + prompt[at:], moved


def _ablated_parts(prompt: str, shard: ShardText, mode: str, guarded: list[Span]
                   ) -> tuple[str | None, int, str, list[Span]]:
    """:func:`ablate` of a shard of several texts: each part in its first form the prompt
    has, all of them ablated (longest first, so a part inside a longer one stays)."""
    edits: dict[str, str] = {}
    occurrences = 0
    for forms in shard.parts:
        found = next(((t, spans) for t in forms if (spans := _open_spans(prompt, t, guarded))),
                     None)
        if found is None or found[0] in edits:
            continue
        text, spans = found
        new = shard.removals.get(text, "") if mode == "removed" else shard.replacements.get(text)
        if new is None:
            return None, len(spans), "no_replacement", guarded
        edits[text] = new
        occurrences += len(spans)
    if not edits:
        return None, 0, "not_found", guarded
    for text in sorted(edits, key=len, reverse=True):
        # located again in the prompt as it now is (an earlier edit moved what follows it)
        prompt, guarded = _splice(prompt, [(a, b, edits[text]) for a, b in
                                          _open_spans(prompt, text, guarded)], guarded)
    return prompt, occurrences, "scored", guarded


def action_span(output: str) -> tuple[int, int]:
    """Bytes of ``output`` that are its action: the tool call block(s), else the final
    answer (after "Final Answer:" or "Answer:"), else the whole output."""
    calls = list(_TOOL_CALL.finditer(output))
    if calls:
        start, end = calls[0].start(), calls[-1].end()
    else:
        final = _FINAL.search(output)
        start, end = (final.start(), len(output)) if final else (0, len(output))
    return len(output[:start].encode("utf-8")), len(output[:end].encode("utf-8"))


ROW_COLUMNS = ["run_id", "episode_id", "span_id", "step_index", "model", "suite", "task_id",
               "shard", "shard_kind", "mode", "status", "occurrences", "output_tokens",
               "base_logp", "ablated_logp", "delta_logp", "base_action_logp",
               "ablated_action_logp", "delta_action_logp", "evaluated_tokens", "detail",
               "tokens", "token_deltas"]


def attribute_call(call: RecordedCall, shards: Sequence[ShardText], score: Scorer,
                   modes: Sequence[str] = MODES, *, action: tuple[int, int] | None = None
                   ) -> list[dict[str, object]]:
    """One row per (shard, mode) of ``call``: the deltas, or the status saying why none.
    ``action``: the output's bytes that are its action (default :func:`action_span`)."""
    return attribute_episode([call], shards, score, modes,
                             actions=None if action is None else [action])


def attribute_episode(calls: Sequence[RecordedCall], shards: Sequence[ShardText], score: Scorer,
                      modes: Sequence[str] = MODES, *,
                      actions: Sequence[tuple[int, int]] | None = None) -> list[dict[str, object]]:
    """:func:`attribute_call` for the calls of one episode, in step order: one row per call x
    shard x mode, ordered so.

    The scoring order is what makes it cheap: every step of the original first, then every
    step of each ablated variant in turn. Step k+1's input starts with step k's input and
    output (the history grows), with the shard removed from the input, so a scorer that keeps
    the last evaluated tokens (llama.cpp's KV cache) evaluates only what a step added, not the
    whole history once per shard. The earlier outputs are the model's own and stay as
    recorded (:func:`output_spans`, ``ablated_input``'s ``guarded``), quotes of the shard
    included."""
    spans = list(actions) if actions is not None else [action_span(c.output) for c in calls]
    guards = [output_spans(c.prompt, [(e.prompt, e.output) for e in calls[:i]])
              for i, c in enumerate(calls)]
    bases = [score(c.prompt, c.output) for c in calls]
    base_actions = [b.over_bytes(*span) for b, span in zip(bases, spans, strict=True)]
    rows: dict[tuple[int, str, str], dict[str, object]] = {}
    for shard in shards:
        for mode in modes:
            for i, call in enumerate(calls):
                rows[i, shard.shard, mode] = _variant_row(
                    call, shard, mode, score, bases[i], base_actions[i], spans[i], guards[i])
    ordered: list[dict[str, object]] = []
    for i, base in enumerate(bases):
        mine = [rows[i, shard.shard, mode] for shard in shards for mode in modes]
        if mine:
            mine[0]["evaluated_tokens"] = int(mine[0]["evaluated_tokens"]) + base.evaluated_tokens  # type: ignore[call-overload]
        ordered += mine
    return ordered


def _variant_row(call: RecordedCall, shard: ShardText, mode: str, score: Scorer, base: Scored,
                 base_action: float, span: tuple[int, int], guarded: Sequence[Span] = ()
                 ) -> dict[str, object]:
    """``guarded``: where the episode's earlier outputs stand in the call's input
    (:func:`output_spans`), kept as recorded."""
    new, occurrences, status = ablated_input(call.prompt, shard, mode, guarded)
    row: dict[str, object] = {
        **{k: getattr(call, k) for k in ("run_id", "episode_id", "span_id", "step_index",
                                         "model", "suite", "task_id")},
        "shard": shard.shard, "shard_kind": shard.kind, "mode": mode, "status": status,
        "occurrences": occurrences, "output_tokens": len(base.logprobs),
        "base_logp": base.total, "base_action_logp": base_action,
        "ablated_logp": np.nan, "ablated_action_logp": np.nan, "delta_logp": np.nan,
        "delta_action_logp": np.nan, "evaluated_tokens": 0,
        "detail": shard.why_unlocatable if status == "unlocatable" else "",
        "tokens": None, "token_deltas": None,
    }
    if new is not None:
        ablated = score(new, call.output)
        ablated_action = ablated.over_bytes(*span)
        row.update(ablated_logp=ablated.total, ablated_action_logp=ablated_action,
                   delta_logp=base.total - ablated.total,
                   delta_action_logp=base_action - ablated_action,
                   evaluated_tokens=ablated.evaluated_tokens, **_per_token(base, ablated))
    return row


def _per_token(base: Scored, ablated: Scored) -> dict[str, object]:
    """The output's tokens and each one's Δ log p (base minus ablated), where the scorer
    gives token texts (the same recorded output tokenizes alike under both inputs)."""
    texts = getattr(base, "tokens", None)
    if texts is None or len(base.logprobs) != len(ablated.logprobs) or len(texts) != len(base.logprobs):
        return {}
    return {"tokens": list(texts),
            "token_deltas": [b - a for b, a in zip(base.logprobs, ablated.logprobs, strict=True)]}


def episode_deltas(rows: pd.DataFrame) -> pd.DataFrame:
    """Per episode x shard x mode: the deltas summed over the episode's scored steps."""
    scored = rows[rows.status == "scored"]
    keys = ["model", "suite", "task_id", "episode_id", "shard", "mode"]
    if scored.empty:
        return pd.DataFrame(columns=[*keys, "steps", "delta_logp", "delta_action_logp"])
    return (scored.groupby(keys, sort=True)
            .agg(steps=("span_id", "nunique"), delta_logp=("delta_logp", "sum"),
                 delta_action_logp=("delta_action_logp", "sum"))
            .reset_index())


def attribution_summary(rows: pd.DataFrame, value: str = "delta_action_logp") -> pd.DataFrame:
    """Per model x shard x mode: episodes, tasks, mean per-episode delta with a standard error
    clustered by task and its 95% interval; and how many calls located the shard."""
    columns = ["model", "shard", "mode", "episodes", "tasks", "mean", "se", "ci_low", "ci_high",
               "calls", "located", "not_found", "unlocatable"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    per_episode = episode_deltas(rows)
    out = []
    for (model, shard, mode), group in rows.groupby(["model", "shard", "mode"], sort=True):
        episodes = per_episode[(per_episode.model == model) & (per_episode["shard"] == shard)
                               & (per_episode["mode"] == mode)]
        tasks = (episodes.suite.astype(str) + "/" + episodes.task_id.astype(str)).to_numpy()
        est = estimate(episodes[value].to_numpy(dtype=float), tasks)
        status = group.status.value_counts()
        out.append({"model": model, "shard": shard, "mode": mode, "episodes": est.n,
                    "tasks": est.clusters, "mean": est.mean, "se": est.se,
                    "ci_low": est.ci_low, "ci_high": est.ci_high, "calls": len(group),
                    "located": int(status.get("scored", 0) + status.get("no_replacement", 0)),
                    "not_found": int(status.get("not_found", 0)),
                    "unlocatable": int(status.get("unlocatable", 0))})
    return pd.DataFrame(out, columns=columns)


def top_shard_rate(rows: pd.DataFrame, shard: str, mode: str = "removed",
                   value: str = "delta_action_logp") -> pd.Series:
    """Per model: the share of episodes where ``shard`` has the largest delta of all shards."""
    per_episode = episode_deltas(rows)
    per_episode = per_episode[per_episode["mode"] == mode]
    if per_episode.empty:
        return pd.Series(dtype=float)
    best = per_episode.loc[per_episode.groupby(["model", "episode_id"])[value].idxmax()]
    return (best["shard"] == shard).groupby(best.model).mean()


def with_models(calls: Sequence[RecordedCall], models: Sequence[str] | None) -> list[RecordedCall]:
    """``calls`` of these models (all when None); an error naming the models that have none."""
    if not models:
        return list(calls)
    missing = sorted(set(models) - {c.model for c in calls})
    if missing:
        present = ", ".join(sorted({c.model for c in calls})) or "none"
        raise AttributionError(f"no recorded llm calls of {', '.join(missing)} in the selection; "
                               f"models with calls: {present}")
    return [c for c in calls if c.model in models]


def relabel(call: RecordedCall, **changes: object) -> RecordedCall:
    return replace(call, **changes)  # type: ignore[arg-type]


def suites_dir_or_none(path: Path | None) -> Path | None:
    return path if path and path.is_dir() else None


def model_profiles(rows: pd.DataFrame, value: str = "delta_action_logp",
                   by: str = "model") -> pd.DataFrame:
    """Per ``by`` (model, or a model · scaffold label) x mode: the mean delta of removing /
    replacing one located shard (per episode x shard, summed over steps) with a standard
    error clustered by task; the shard it depends on most."""
    columns = [by, "mode", "cells", "tasks", "mean", "se", "ci_low", "ci_high", "top_shard",
               "top_delta"]
    scored = rows[rows.status == "scored"]
    if scored.empty:
        return pd.DataFrame(columns=columns)
    keys = [by, "mode", "suite", "task_id", "episode_id", "shard"]
    cells = scored.groupby(keys, sort=True)[value].sum().reset_index()
    out = []
    for (who, mode), group in cells.groupby([by, "mode"], sort=True):
        est = estimate(group[value].to_numpy(dtype=float),
                       (group.suite.astype(str) + "/" + group.task_id.astype(str)).to_numpy())
        per_shard = group.groupby("shard")[value].mean()
        out.append({by: who, "mode": mode, "cells": est.n, "tasks": est.clusters,
                    "mean": est.mean, "se": est.se, "ci_low": est.ci_low, "ci_high": est.ci_high,
                    "top_shard": per_shard.idxmax(), "top_delta": float(per_shard.max())})
    return pd.DataFrame(out, columns=columns)


def clearest_difference(profiles: pd.DataFrame, by: str = "model") -> str | None:
    """One sentence naming the pair of profiles whose mean deltas differ most with
    non-overlapping 95% intervals; without such a pair, the pair that differs most, saying
    that their intervals overlap (None with fewer than two profiles)."""
    best: tuple[float, str] | None = None
    rows = list(profiles.dropna(subset=["ci_low", "ci_high"]).itertuples())
    for a in rows:
        for b in rows:
            if a.mode != b.mode or a.mean <= b.mean or a.ci_low <= b.ci_high:
                continue
            gap = float(a.mean - b.mean)
            text = (f"removing one shard of a task moves {getattr(a, by)}'s log p of its own "
                    f"action by {a.mean:.2f} nats [{a.ci_low:.2f}, {a.ci_high:.2f}], "
                    f"{getattr(b, by)}'s by {b.mean:.2f} [{b.ci_low:.2f}, {b.ci_high:.2f}]")
            if best is None or gap > best[0]:
                best = (gap, text)
    if best is not None or len(rows) < 2:
        return None if best is None else best[1]
    top = max(rows, key=lambda r: r.mean)
    low = min((r for r in rows if r.mode == top.mode), key=lambda r: r.mean)
    if top is low:
        return None
    return (f"removing one shard of a task moves {getattr(top, by)}'s log p of its own action "
            f"most, by {top.mean:.2f} nats [{top.ci_low:.2f}, {top.ci_high:.2f}], and "
            f"{getattr(low, by)}'s least, by {low.mean:.2f} [{low.ci_low:.2f}, "
            f"{low.ci_high:.2f}]; at {top.tasks} tasks their 95% intervals overlap")
