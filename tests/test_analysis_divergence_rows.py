"""The comparison's trajectories and divergence table, computed without a Python loop over
the steps and without aligning the common prefix and suffix, equal what the row-by-row code
computed before (kept here as the reference), on real stores: the planted divergences, the
shard ablations and the UI fixture (protocol errors, errored episodes)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest

from shardscope.analysis import trajectory as T
from shardscope.analysis.compare import with_systems
from shardscope.tracer.queries import comparison as reads
from shardscope.tracer.store import Store


def old_trajectories(steps: pd.DataFrame) -> dict[str, list[T.Action]]:
    """Episode id -> actions, one row at a time (the code before)."""
    ordered = steps.sort_values(["episode_id", "step_index"], kind="stable")
    out: dict[str, list[T.Action]] = {}
    for episode, index, raw, error, text in zip(
            ordered["episode_id"].tolist(), ordered["step_index"].tolist(),
            ordered["action_json"].tolist(), ordered["protocol_error"].tolist(),
            ordered["output"].tolist(), strict=True):
        error = error if isinstance(error, str) else None
        kind, tool, detail = T._classify_json(raw if isinstance(raw, str) else None, error)
        out.setdefault(episode, []).append(
            T.Action(kind, tool, detail, int(index), text if isinstance(text, str) else None))
    return out


def old_divergence_table(pairs: pd.DataFrame,
                         paths: Mapping[str, Sequence[T.Action]]) -> pd.DataFrame:
    """The divergence table through first_divergence, pair by pair (the code before)."""
    rows = []
    for pair in pairs.to_dict("records"):
        div = T.first_divergence(paths.get(pair["episode_id_a"], ()),
                                 paths.get(pair["episode_id_b"], ()))
        rows.append({
            **pair, "diverged": div.position is not None, "position": div.position,
            "step_a": div.step_a, "step_b": div.step_b,
            "action_a": div.action_a.label if div.action_a else None,
            "action_b": div.action_b.label if div.action_b else None,
            "tool_a": T._tool(div.action_a), "tool_b": T._tool(div.action_b),
            "rejoined": div.rejoined, "distance": div.distance})
    columns = [*pairs.columns, "diverged", "position", "step_a", "step_b", "action_a",
               "action_b", "tool_a", "tool_b", "rejoined", "distance"]
    return pd.DataFrame(rows, columns=columns)


@pytest.fixture(scope="module", params=["divergence_store", "dependence_store", "fixture_store"])
def store_steps(request: pytest.FixtureRequest) -> tuple[pd.DataFrame, pd.DataFrame]:
    path: Path = request.getfixturevalue(request.param)
    store = Store(path)
    episodes = with_systems(reads.episodes(store, reads.Selection(), ablations=True))
    return episodes, reads.steps_of(store, list(episodes.episode_id))


def test_trajectories_equal_the_row_by_row_ones(store_steps) -> None:
    _, steps = store_steps
    new, old = T.trajectories(steps), old_trajectories(steps)
    assert len(new) > 0 and new == old
    assert [len(p) for p in new.values()] == [len(p) for p in old.values()]
    # shuffled rows give the same paths: the order is the steps', not the read's
    assert T.trajectories(steps.sample(frac=1, random_state=1)) == old


def test_divergence_table_equals_the_one_from_first_divergence(store_steps) -> None:
    episodes, steps = store_steps
    paths = T.trajectories(steps)
    compared = 0
    for a, b in itertools.combinations(sorted(episodes.system.unique()), 2):
        pairs = T.pair_episodes(episodes, a, b)
        new = T.divergence_table(pairs, paths)
        pd.testing.assert_frame_equal(new, old_divergence_table(pairs, paths), check_dtype=False)
        compared += len(new)
    assert compared > 0


def test_divergence_rows_of_planted_paths() -> None:
    add = [T.Action("tool", "add", '{"a":1}', i) for i in range(4)]
    other = T.Action("tool", "add", '{"a":9}', 2)
    done = T.Action("final", None, "5", 9)
    paths = {"same1": [*add, done], "same2": [*add, done], "rejoins": [*add[:2], other, add[3], done],
             "short": add[:2], "empty": []}
    ids = list(paths)
    pairs = pd.DataFrame([(x, y) for x in ids for y in ids],
                         columns=["episode_id_a", "episode_id_b"])
    new = T.divergence_table(pairs, paths)
    pd.testing.assert_frame_equal(new, old_divergence_table(pairs, paths), check_dtype=False)
    row = new.set_index(["episode_id_a", "episode_id_b"]).loc[("same1", "rejoins")]
    assert (row.position, bool(row.rejoined), row.distance) == (2, True, 0.1)
