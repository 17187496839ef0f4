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
import operator
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    if not len(ordered):
        return {}
    if "output" not in ordered:
        ordered = ordered.assign(output=None)
    if ordered[column].dtype == object and any(isinstance(v, Mapping) for v in ordered[column]):
        return _trajectories_of_mappings(ordered, column)
    # Steps repeat across seeds and models: one (immutable) Action per distinct step, shared,
    # and no Python loop over the rows (this was the Compare page's largest cost).
    fields = ordered[[column, "protocol_error", "step_index", "output"]]
    codes = fields.groupby(list(fields.columns), dropna=False, sort=False).ngroup().to_numpy()
    firsts = fields[~pd.Series(codes).duplicated().to_numpy()]
    made = [Action(*_classify_json(_text(raw), _text(error)), int(index), _text(text))
            for raw, error, index, text in zip(*(firsts[c].tolist() for c in fields.columns),
                                               strict=True)]
    actions = [made[c] for c in codes.tolist()]
    episodes = ordered["episode_id"].to_numpy()
    starts = [0, *(np.flatnonzero(episodes[1:] != episodes[:-1]) + 1).tolist(), len(episodes)]
    return {episodes[i]: actions[i:j] for i, j in itertools.pairwise(starts)}


_STEP_FIELDS = ("action_json", "protocol_error", "step_index", "output")


def paths_of(steps: pa.Table) -> dict[str, list[Action]]:
    """:func:`trajectories` of a ``step_rows`` table (in episode and step order, as read),
    without a pandas frame: Arrow numbers each step's four fields by hashing (no sort), and
    one Action is made per distinct step."""
    if not steps.num_rows:
        return {}
    codes = np.zeros(steps.num_rows, dtype=np.int64)
    for name in _STEP_FIELDS:
        column = _encoded(steps[name])
        # Numbered again after each field (in order of first appearance), so codes stay
        # below the number of steps and the pairs below its square.
        codes = _encoded(pa.array(codes * len(column.dictionary) + _indices(column))).indices
        codes = _indices_of(codes)
    firsts = np.flatnonzero(codes > np.maximum.accumulate(np.concatenate(([-1], codes[:-1]))))
    distinct = steps.take(pa.array(firsts))
    made = [Action(*_classify_json(raw, error), int(index), text) for raw, error, index, text in
            zip(*(distinct[c].to_pylist() for c in _STEP_FIELDS), strict=True)]
    actions = [made[c] for c in codes.tolist()]
    ids = _indices(_encoded(steps["episode_id"]))
    starts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), len(ids)]
    names = steps["episode_id"].take(pa.array(starts[:-1])).to_pylist()
    return {name: actions[i:j] for name, (i, j) in
            zip(names, itertools.pairwise(starts), strict=True)}


def _encoded(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """Values numbered in order of first appearance (a missing value is one more value)."""
    if isinstance(values, pa.ChunkedArray):  # one array: chunks would number on their own
        values = values.combine_chunks()
    encoded: pa.DictionaryArray = pc.dictionary_encode(values, null_encoding="encode")
    return encoded


def _indices(column: pa.DictionaryArray) -> np.ndarray:
    return _indices_of(column.indices)


def _indices_of(indices: pa.Array) -> np.ndarray:
    numbers: np.ndarray = indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return numbers


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _trajectories_of_mappings(ordered: pd.DataFrame, column: str) -> dict[str, list[Action]]:
    out: dict[str, list[Action]] = {}
    for episode, index, raw, error, text in zip(
            ordered["episode_id"].tolist(), ordered["step_index"].tolist(),
            ordered[column].tolist(), ordered["protocol_error"].tolist(),
            ordered["output"].tolist(), strict=True):
        error = _text(error)
        if isinstance(raw, Mapping):
            kind, tool, detail = _classify(StepAction.from_json(raw), error)
        else:
            kind, tool, detail = _classify_json(_text(raw), error)
        out.setdefault(episode, []).append(Action(kind, tool, detail, int(index), _text(text)))
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
    return [Aligned(a[i] if i >= 0 else None, b[j] if j >= 0 else None, op)
            for i, j, op in _middle_ops(a, b)]


def _middle_ops(a: Sequence[Action], b: Sequence[Action]) -> list[tuple[int, int, str]]:
    """The minimum-cost alignment as (index in a, index in b, op), -1 where a side has none
    (the divergence table needs only the ops: no Aligned objects made for it)."""
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
    out: list[tuple[int, int, str]] = []
    i, j = n, m
    while i or j:  # trace back, preferring the diagonal
        if i and j and cost[i][j] == cost[i - 1][j - 1] + sub[i - 1][j - 1]:
            out.append((i - 1, j - 1, _OPS.get(sub[i - 1][j - 1], "substitute")))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            out.append((i - 1, -1, "delete"))
            i -= 1
        else:
            out.append((-1, j - 1, "insert"))
            j -= 1
    return out[::-1]


_OPS = {0.0: "match", SIMILAR_COST: "similar"}


_OP_COSTS = {"match": 0.0, "similar": SIMILAR_COST}  # any other op costs 1


def alignment_cost(alignment: Sequence[Aligned]) -> float:
    return sum(_OP_COSTS.get(col.op, 1.0) for col in alignment)


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
    cols = [*PAIR_KEYS, "episode_id", "outcome", "score", "steps", "final_answer"]
    data = _finished(episodes, [*dict.fromkeys([*cols, *systems, "started_at"])])
    data = data.reset_index(drop=True)
    # What sorting the rows by started_at, keeping each task-seed's last row per system and
    # merging the two sides on the task-seed did, on row positions: only the rows kept are
    # copied. The order is that sort's (it depends on the started_at column alone); keys
    # compare as their factorized codes (a missing key equals a missing key, as in a merge).
    order = data[["started_at"]].sort_values("started_at").index.tolist()
    codes = [pd.factorize(data[k])[0][order].tolist() for k in PAIR_KEYS]
    labels = system_column(data, systems).to_numpy()[order].tolist()
    latest: dict[str, dict[tuple[int, ...], int]] = {a: {}, b: {}}
    for rank, (label, key) in enumerate(zip(labels, zip(*codes, strict=True), strict=True)):
        if label in latest:
            latest[label].pop(key, None)  # keep the last row, in its place in the order
            latest[label][key] = rank
    right = latest[b]
    kept = [(order[rank], order[right[key]]) for key, rank in
            sorted(latest[a].items(), key=lambda item: item[1]) if key in right]
    left_rows = np.array([x for x, _ in kept], dtype=np.intp)  # typed: no pairs is no rows
    right_rows = np.array([y for _, y in kept], dtype=np.intp)
    side = cols[len(PAIR_KEYS):]
    # Column by column (picking a list of columns by name cost more than the rest).
    out = {k: data[k].array.take(left_rows) for k in PAIR_KEYS}
    out |= {f"{c}_a": data[c].array.take(left_rows) for c in side}
    out |= {f"{c}_b": data[c].array.take(right_rows) for c in side}
    return pd.DataFrame(out)


def _finished(episodes: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """These columns of the episodes with an outcome (no row copied when all have one: a
    comparison's do, and each copied string column costs an Arrow take)."""
    done = episodes["outcome"].notna()
    return episodes[columns] if bool(done.all()) else episodes.loc[done, columns]


_KEY = operator.attrgetter("key")  # map() of it: faster than a comprehension over 26k steps
_DIVERGENCE_COLUMNS = ["diverged", "position", "step_a", "step_b", "action_a", "action_b",
                       "tool_a", "tool_b", "rejoined", "distance"]


def divergence_table(pairs: pd.DataFrame, paths: Mapping[str, Sequence[Action]]) -> pd.DataFrame:
    """One row per pair of episodes: whether and where they part, on what, and if they rejoin."""
    keys: dict[str, list[str]] = {}  # each episode's action keys, worked out once

    def of(episode: str) -> tuple[Sequence[Action], list[str]]:
        path = paths.get(episode, ())
        if episode not in keys:
            keys[episode] = list(map(_KEY, path))
        return path, keys[episode]

    middles: dict[tuple[Any, ...], list[str]] = {}  # repeats (seeds at temperature 0) align once
    rows = [_divergence_row(*of(a), *of(b), middles) for a, b in
            zip(pairs["episode_id_a"].tolist(), pairs["episode_id_b"].tolist(), strict=True)]
    table = pd.DataFrame(rows, columns=_DIVERGENCE_COLUMNS, index=pairs.index)
    if not rows:
        table = pd.DataFrame(columns=_DIVERGENCE_COLUMNS, index=pairs.index)
    return pd.concat([pairs, table], axis=1).reset_index(drop=True)


def _divergence_row(a: Sequence[Action], keys_a: list[str], b: Sequence[Action],
                    keys_b: list[str], middles: dict[tuple[Any, ...], list[str]] | None = None
                    ) -> tuple[Any, ...]:
    """What :func:`first_divergence` reports of a pair, without building the aligned common
    prefix and suffix: align() matches them as they stand, so the sequences part right after
    the prefix, rejoin if any suffix or a match in the middle follows, and the cost is the
    middle's alone. ``middles`` keeps the ops of middles aligned before: they depend only on
    the actions' keys and tools (what the costs compare)."""
    if keys_a == keys_b:
        return False, None, None, None, None, None, _tool(None), _tool(None), False, 0.0
    shortest = min(len(a), len(b))
    prefix = 0
    while prefix < shortest and keys_a[prefix] == keys_b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and keys_a[-1 - suffix] == keys_b[-1 - suffix]:
        suffix += 1
    middle_a, middle_b = a[prefix:len(a) - suffix], b[prefix:len(b) - suffix]
    seen = (tuple((x.key, x.tool) for x in middle_a), tuple((y.key, y.tool) for y in middle_b))
    ops = middles.get(seen) if middles is not None else None
    if ops is None:
        ops = [op for _, _, op in _middle_ops(middle_a, middle_b)]
        if middles is not None:
            middles[seen] = ops
    rejoined = suffix > 0 or "match" in ops[1:]
    x = a[prefix] if prefix < len(a) else None
    y = b[prefix] if prefix < len(b) else None
    return (True, prefix, x.step_index if x else None, y.step_index if y else None,
            x.label if x else None, y.label if y else None, _tool(x), _tool(y), rejoined,
            sum(_OP_COSTS.get(op, 1.0) for op in ops) / max(len(a), len(b)))


def _tool(action: Action | None) -> str | None:
    if action is None:
        return "(ended)"
    return action.tool if action.kind == "tool" else f"({action.kind})"


def divergence_summary(table: pd.DataFrame) -> dict[str, Any]:
    """How early a pair of systems part, on which tools, how often they rejoin."""
    if table.empty:
        return {"pairs": 0}
    parted = table[table.diverged]
    where = Counter(zip(parted.tool_a.tolist(), parted.tool_b.tolist(), strict=True))
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


def _loops(path: Sequence[Action]) -> bool:
    """``repeated_runs(path) > 0``: some tool call is repeated right after itself."""
    return any(current.kind == "tool" and current.key == previous.key
               for previous, current in itertools.pairwise(path))


def behaviour_profile(episodes: pd.DataFrame, paths: Mapping[str, Sequence[Action]],
                      systems: Sequence[str] = SYSTEM_KEYS) -> pd.DataFrame:
    """Per system: episodes, tool calls per episode, share of episodes with a repeated-call
    loop, protocol errors per episode, and steps to success (mean and median)."""
    data = _finished(episodes, [*dict.fromkeys([*systems, "episode_id", "tool_calls", "steps",
                                                 "outcome"])])
    if data.empty:
        return pd.DataFrame(columns=["system", "episodes", "tool_calls_per_episode",
                                     "loop_share", "protocol_errors_per_episode",
                                     "success_steps_mean", "success_steps_median"])
    data["system"] = system_column(data, systems)
    # Plain lists: Series.map over Arrow strings converts value by value.
    walks = [paths.get(e, ()) for e in data.episode_id.tolist()]
    data["looped"] = [_loops(p) for p in walks]
    kind = operator.attrgetter("kind")
    data["errors"] = [operator.countOf(map(kind, p), "error") for p in walks]
    data["success_steps"] = data.steps.where(data.outcome == "success")
    # One mean over four columns (a named aggregation per column cost a pass each).
    groups = data.groupby("system")
    means = groups[["tool_calls", "looped", "errors", "success_steps"]].mean()
    out = pd.DataFrame({
        "episodes": groups.size(), "tool_calls_per_episode": means.tool_calls,
        "loop_share": means.looped, "protocol_errors_per_episode": means.errors,
        "success_steps_mean": means.success_steps,
        "success_steps_median": groups.success_steps.median()})
    return out.reset_index()
