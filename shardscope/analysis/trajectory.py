"""Where trajectories part: episodes as action sequences, aligned, and their first divergence.

An episode's trajectory is the action of each scaffold step, read from the store's ``steps``
view: a tool call (tool name + normalized arguments), a final answer (normalized), a plan or
note, an empty reply, or a protocol error (its kind and the normalized reply: two protocol
errors are the same action only when the models wrote the same thing). Two episodes of the same task (same seed) are
aligned by weighted edit distance (an identical action costs 0, the same tool with other
arguments 0.5, anything else 1); the first divergence is the first step where the actions
differ, reported with the common actions before it and what each side did instead.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import orjson
import pandas as pd

from shardscope.analysis.stats import SYSTEM_KEYS, system_column
from shardscope.scaffolds.types import StepAction

SIMILAR_COST = 0.5  # same tool, other arguments (or: both answered, differently)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Action:
    """What one step did. ``detail``: normalized arguments, answer, or error kind."""

    kind: str  # tool | final | plan | note | none | error
    tool: str | None = None
    detail: str = ""
    step_index: int = -1
    text: str | None = None  # what the model wrote in that step (context, not compared)

    @cached_property
    def key(self) -> str:
        # Protocol errors of one kind differ by what the model wrote: two models breaking the
        # protocol in different words did not do the same thing (issue 17).
        if self.kind == "error":
            return f"error::{self.detail}:{normalize_reply(self.text)}"
        return f"{self.kind}:{self.tool or ''}:{self.detail}"

    @property
    def label(self) -> str:
        if self.kind == "tool":
            return f"{self.tool}({self.detail})"
        if self.kind == "final":
            return f"answer {self.detail!r}"
        if self.kind == "error":
            reply = normalize_reply(self.text)
            if not reply:
                return f"protocol error: {self.detail}"
            short = reply if len(reply) <= 40 else reply[:39] + "…"
            return f"protocol error: {self.detail} ({short!r})"
        return self.kind

    def similar(self, other: Action) -> bool:
        return self.kind == other.kind and self.tool == other.tool


def _normal_value(value: Any) -> Any:
    if isinstance(value, str):
        return _SPACE.sub(" ", value.strip()).lower()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        number = float(value)
        return int(number) if math.isfinite(number) and number.is_integer() else round(number, 9)
    if isinstance(value, Mapping):
        return {str(k): _normal_value(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_normal_value(v) for v in value]
    return str(value)


def normalize_arguments(arguments: Any) -> str:
    """Canonical JSON of tool arguments: sorted keys, trimmed lower-case text, 2.0 == 2."""
    return json.dumps(_normal_value(arguments), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def normalize_answer(answer: Any) -> str:
    text = _SPACE.sub(" ", str(answer or "").strip()).lower().rstrip(".")
    return text


@lru_cache(maxsize=65_536)
def normalize_reply(text: str | None) -> str:
    """A reply as compared: whitespace collapsed, trimmed, lower-case."""
    return _SPACE.sub(" ", (text or "").strip()).lower()


def _error_kind(message: str) -> str:
    return re.split(r"[;:(]", message, maxsplit=1)[0].strip().lower()


def action_of(action: StepAction | None, protocol_error: str | None = None,
              step_index: int = -1, text: str | None = None) -> Action:
    """One step's :class:`Action` from its recorded step action and protocol error."""
    kind, tool, detail = _classify(action, protocol_error)
    return Action(kind, tool, detail, step_index, text)


@lru_cache(maxsize=65_536)
def _classify_json(raw: str | None, protocol_error: str | None) -> tuple[str, str | None, str]:
    # Steps repeat the same actions across seeds and models: parse each distinct one once.
    return _classify(StepAction.from_json(orjson.loads(raw) if raw else None), protocol_error)


def _classify(action: StepAction | None, protocol_error: str | None) -> tuple[str, str | None, str]:
    # A tool call or an answer is what the step did even when the protocol was broken (an
    # unknown tool, say); any other step with a protocol error is an error, whatever kind it
    # recorded (stores written before the `error` kind recorded such steps as `none`).
    if action is not None and action.kind == "tool":
        tools = "+".join(c.tool for c in action.calls)
        detail = " + ".join(normalize_arguments(c.arguments) for c in action.calls)
        return "tool", tools, detail
    if action is not None and action.kind == "final":
        return "final", None, normalize_answer(action.answer)
    if protocol_error:
        return "error", None, _error_kind(protocol_error)
    return (action.kind if action is not None else "none"), None, ""


def trajectories(steps: pd.DataFrame) -> dict[str, list[Action]]:
    """Episode id -> its actions in step order, from a ``steps`` frame (with ``action_json``
    or ``action`` holding each step's stored action, ``protocol_error`` and ``output``)."""
    column = "action_json" if "action_json" in steps else "action"
    ordered = steps.sort_values(["episode_id", "step_index"], kind="stable")
    outputs = ordered["output"].tolist() if "output" in ordered else [None] * len(ordered)
    out: dict[str, list[Action]] = {}
    # Steps repeat across seeds and models: one (immutable) Action per distinct step, shared.
    made: dict[tuple[str | None, str | None, int, str | None], Action] = {}
    # Plain lists: iterating Arrow-backed columns element by element costs ~4 us per value.
    for episode, index, raw, error, text in zip(
            ordered["episode_id"].tolist(), ordered["step_index"].tolist(),
            ordered[column].tolist(), ordered["protocol_error"].tolist(), outputs, strict=True):
        error = error if isinstance(error, str) else None
        text = text if isinstance(text, str) else None
        if isinstance(raw, Mapping):
            action = Action(*_classify(StepAction.from_json(raw), error), int(index), text)
        else:
            key = (raw if isinstance(raw, str) else None, error, int(index), text)
            action = made.get(key) or made.setdefault(
                key, Action(*_classify_json(key[0], error), key[2], text))
        out.setdefault(episode, []).append(action)
    return out


def tool_paths(calls: pd.DataFrame, stepped: Collection[str]) -> dict[str, list[Action]]:
    """Episode id -> one tool action per tool call, for episodes with no steps (agents traced
    by other instrumentations record tool spans but no scaffold steps); ``calls`` is a
    ``tool_calls_of`` frame, in order."""
    out: dict[str, list[Action]] = {}
    for episode, tool in zip(calls["episode_id"].tolist(), calls["tool_name"].tolist(),
                             strict=True):
        if episode not in stepped:
            path = out.setdefault(episode, [])
            path.append(Action("tool", tool if isinstance(tool, str) else None, "", len(path)))
    return out


# --- alignment --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Aligned:
    """One column of an alignment: ``op`` is match, similar, substitute, delete (only in a)
    or insert (only in b)."""

    a: Action | None
    b: Action | None
    op: str


def _cost(x: Action, y: Action) -> float:
    if x.key == y.key:
        return 0.0
    return SIMILAR_COST if x.similar(y) else 1.0


def align(a: Sequence[Action], b: Sequence[Action]) -> list[Aligned]:
    """Minimum-cost alignment. The common prefix and suffix are matched as they stand (so
    ties never move the point where the sequences part); the middle is aligned by DP."""
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix].key == b[prefix].key:
        prefix += 1
    suffix = 0
    while (suffix < min(len(a), len(b)) - prefix
           and a[len(a) - 1 - suffix].key == b[len(b) - 1 - suffix].key):
        suffix += 1
    head = [Aligned(x, y, "match") for x, y in zip(a[:prefix], b[:prefix], strict=True)]
    tail = [Aligned(x, y, "match") for x, y in zip(a[len(a) - suffix:], b[len(b) - suffix:], strict=True)]
    return head + _align_middle(a[prefix:len(a) - suffix], b[prefix:len(b) - suffix]) + tail


def _align_middle(a: Sequence[Action], b: Sequence[Action]) -> list[Aligned]:
    n, m = len(a), len(b)
    # Plain lists of floats: numpy's per-element indexing made this DP the Compare page's
    # largest cost. Costs are sums of 0, 0.5 and 1: exact in binary, so == is safe.
    keys_a, keys_b = [x.key for x in a], [y.key for y in b]
    sub = [[0.0 if ka == kb else (SIMILAR_COST if x.similar(y) else 1.0)
            for y, kb in zip(b, keys_b, strict=True)] for x, ka in zip(a, keys_a, strict=True)]
    cost = [[float(j) for j in range(m + 1)]]
    for i in range(1, n + 1):
        row, above, costs = [float(i)], cost[i - 1], sub[i - 1]
        for j in range(1, m + 1):
            row.append(min(above[j - 1] + costs[j - 1], above[j] + 1, row[j - 1] + 1))
        cost.append(row)
    out: list[Aligned] = []
    i, j = n, m
    while i or j:  # trace back, preferring the diagonal
        if i and j and cost[i][j] == cost[i - 1][j - 1] + sub[i - 1][j - 1]:
            out.append(Aligned(a[i - 1], b[j - 1], _OPS.get(sub[i - 1][j - 1], "substitute")))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            out.append(Aligned(a[i - 1], None, "delete"))
            i -= 1
        else:
            out.append(Aligned(None, b[j - 1], "insert"))
            j -= 1
    return out[::-1]


_OPS = {0.0: "match", SIMILAR_COST: "similar"}


def alignment_cost(alignment: Sequence[Aligned]) -> float:
    return sum({"match": 0.0, "similar": SIMILAR_COST}.get(col.op, 1.0) for col in alignment)


def distance(a: Sequence[Action], b: Sequence[Action]) -> float:
    """Normalized edit distance: 0 identical, 1 nothing in common (cost / longer length)."""
    longest = max(len(a), len(b))
    return alignment_cost(align(a, b)) / longest if longest else 0.0


@dataclass(frozen=True)
class Divergence:
    """Where two trajectories part. ``position`` is the number of actions they share before
    they differ (None when identical); ``action_a``/``action_b`` are what each did there
    (None: that episode had already ended) and ``step_a``/``step_b`` those steps' indices."""

    position: int | None
    step_a: int | None
    step_b: int | None
    action_a: Action | None
    action_b: Action | None
    context: tuple[Action, ...]  # the shared actions just before the divergence (up to 3)
    rejoined: bool  # an identical action follows the divergence
    distance: float
    alignment: tuple[Aligned, ...]


def first_divergence(a: Sequence[Action], b: Sequence[Action], context: int = 3) -> Divergence:
    alignment = align(a, b)
    longest = max(len(a), len(b))
    dist = alignment_cost(alignment) / longest if longest else 0.0
    where = next((i for i, col in enumerate(alignment) if col.op != "match"), None)
    if where is None:
        return Divergence(None, None, None, None, None, tuple(a[-context:]), False, dist,
                          tuple(alignment))
    # align() matches the common prefix as it stands, so column `where` is action `where`
    # of both sequences (unless one ended there).
    x = a[where] if where < len(a) else None
    y = b[where] if where < len(b) else None
    rejoined = any(c.op == "match" for c in alignment[where + 1:])
    return Divergence(where, x.step_index if x else None, y.step_index if y else None, x, y,
                      tuple(a[max(0, where - context):where]), rejoined, dist, tuple(alignment))


# --- pairs of episodes ------------------------------------------------------------------------
PAIR_KEYS = ("suite", "task_id", "seed")


def pair_episodes(episodes: pd.DataFrame, a: str, b: str,
                  systems: Sequence[str] = SYSTEM_KEYS) -> pd.DataFrame:
    """Episodes of systems ``a`` and ``b`` on the same task and seed, side by side (the
    latest episode of each when one was run more than once)."""
    data = episodes[episodes["outcome"].notna()].copy()
    data["system"] = system_column(data, systems)
    data = data.sort_values("started_at")
    cols = [*PAIR_KEYS, "episode_id", "outcome", "score", "steps", "final_answer"]
    left = data[data.system == a].drop_duplicates(list(PAIR_KEYS), keep="last")[cols]
    right = data[data.system == b].drop_duplicates(list(PAIR_KEYS), keep="last")[cols]
    return left.merge(right, on=list(PAIR_KEYS), suffixes=("_a", "_b"))


def divergence_table(pairs: pd.DataFrame, paths: Mapping[str, Sequence[Action]]) -> pd.DataFrame:
    """One row per pair of episodes: whether and where they part, on what, and if they rejoin."""
    rows = []
    for pair in pairs.to_dict("records"):
        div = first_divergence(paths.get(pair["episode_id_a"], ()), paths.get(pair["episode_id_b"], ()))
        rows.append({
            **pair,
            "diverged": div.position is not None,
            "position": div.position, "step_a": div.step_a, "step_b": div.step_b,
            "action_a": div.action_a.label if div.action_a else None,
            "action_b": div.action_b.label if div.action_b else None,
            "tool_a": _tool(div.action_a), "tool_b": _tool(div.action_b),
            "rejoined": div.rejoined, "distance": div.distance,
        })
    columns = [*pairs.columns, "diverged", "position", "step_a", "step_b", "action_a", "action_b",
               "tool_a", "tool_b", "rejoined", "distance"]
    return pd.DataFrame(rows, columns=columns)


def _tool(action: Action | None) -> str | None:
    if action is None:
        return "(ended)"
    return action.tool if action.kind == "tool" else f"({action.kind})"


def divergence_summary(table: pd.DataFrame) -> dict[str, Any]:
    """How early a pair of systems part, on which tools, how often they rejoin."""
    if table.empty:
        return {"pairs": 0}
    parted = table[table.diverged]
    where = Counter(zip(parted.tool_a, parted.tool_b, strict=True))
    return {
        "pairs": len(table),
        "identical": int((~table.diverged).sum()),
        "diverged": len(parted),
        "median_first_divergence": float(parted.position.median()) if len(parted) else math.nan,
        "mean_first_divergence": float(parted.position.mean()) if len(parted) else math.nan,
        "at_first_step": int((parted.position == 0).sum()),
        "rejoin_rate": float(parted.rejoined.mean()) if len(parted) else math.nan,
        "mean_distance": float(table.distance.mean()),
        "same_outcome": int((table.outcome_a == table.outcome_b).sum()),
        "top_divergences": [{"a": x, "b": y, "pairs": n} for (x, y), n in where.most_common(5)],
    }


# --- tool-use profiles ------------------------------------------------------------------------
def tool_profile(tool_use: pd.DataFrame, systems: pd.Series | None = None) -> pd.DataFrame:
    """Per system and tool: calls, share of the system's calls, error rate. ``tool_use`` is a
    ``tool_use_of`` frame (calls and failed calls per episode and tool, added up by the
    store); ``systems`` maps episode id -> system label (default: the calls' model). Calls
    with no tool name are counted in the episode's calls, not here."""
    named = tool_use[tool_use.tool_name.notna()]
    if named.empty:
        return pd.DataFrame(columns=["system", "tool_name", "calls", "share", "error_rate"])
    data = named.assign(system=named.episode_id.map(systems) if systems is not None
                        else named.model)
    out = data.groupby(["system", "tool_name"])[["calls", "failed"]].sum().reset_index()
    out["error_rate"] = out.failed / out.calls
    out["share"] = out.calls / out.groupby("system").calls.transform("sum")
    return out[["system", "tool_name", "calls", "share", "error_rate"]].sort_values(
        ["system", "calls"], ascending=[True, False], ignore_index=True)


def repeated_runs(path: Sequence[Action], at_least: int = 2) -> int:
    """How many times an identical tool call is repeated back to back (a loop)."""
    loops, run = 0, 1
    for previous, current in itertools.pairwise(path):
        run = run + 1 if current.kind == "tool" and current.key == previous.key else 1
        loops += run == at_least
    return loops


def behaviour_profile(episodes: pd.DataFrame, paths: Mapping[str, Sequence[Action]],
                      systems: Sequence[str] = SYSTEM_KEYS) -> pd.DataFrame:
    """Per system: episodes, tool calls per episode, share of episodes with a repeated-call
    loop, protocol errors per episode, and steps to success (mean and median)."""
    data = episodes[episodes["outcome"].notna()].copy()
    if data.empty:
        return pd.DataFrame(columns=["system", "episodes", "tool_calls_per_episode",
                                     "loop_share", "protocol_errors_per_episode",
                                     "success_steps_mean", "success_steps_median"])
    data["system"] = system_column(data, systems)
    path = data.episode_id.map(lambda e: paths.get(e, ()))
    data["loops"] = path.map(repeated_runs)
    data["errors"] = path.map(lambda p: sum(a.kind == "error" for a in p))
    data["success_steps"] = data.steps.where(data.outcome == "success")
    out = data.groupby("system").agg(
        episodes=("episode_id", "size"), tool_calls_per_episode=("tool_calls", "mean"),
        loop_share=("loops", lambda s: float((s > 0).mean())),
        protocol_errors_per_episode=("errors", "mean"),
        success_steps_mean=("success_steps", "mean"),
        success_steps_median=("success_steps", "median"))
    return out.reset_index()
