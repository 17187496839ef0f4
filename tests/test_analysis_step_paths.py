"""The comparison's trajectories read as Arrow (``step_rows`` + ``trajectory.paths_of``, no
pandas frame of every step) equal the frame path's (``steps_of`` + ``trajectories``) and the
row-by-row reference, on real stores: the planted divergences, the shard ablations, the UI
fixture (protocol errors, errored episodes with no step), and a store whose steps were
written with ties, gaps, missing fields and repeats across episodes. Both metrics' estimates,
now put side by side, and the pairs of episodes, now matched on row positions, equal the
merges that made them before (with tied starts, missing keys and repeated rows)."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from shardscope.analysis import compare as C
from shardscope.analysis import stats
from shardscope.analysis import trajectory as T
from shardscope.analysis.compare import compare, with_systems
from shardscope.tracer.queries import comparison as reads
from shardscope.tracer.store import Store
from tests.test_analysis_divergence_rows import old_trajectories

ADD = '{"type": "tool", "calls": [{"id": "c", "tool": "add", "arguments": {"a": 2, "b": 3}}]}'
ADD_SPACED = (
    '{"type": "tool", "calls": [{"id": "d", "tool": "add", "arguments": {"b": 3, "a": 2.0}}]}'
)
FINAL = '{"type": "final", "answer": "5"}'
# (episode, step_index, action JSON, protocol error, output)
PLANTED = [
    ("e1", 0, ADD, None, "calling add"),
    ("e1", 1, ADD, None, "calling add"),
    ("e1", 2, FINAL, None, "Final Answer: 5"),
    ("e2", 0, ADD, None, "calling add"),
    ("e2", 1, ADD_SPACED, None, "calling add"),  # same normalized call, other JSON text
    ("e2", 3, FINAL, None, "Final Answer: 5"),  # a gap: step 2 is missing
    ("e3", 0, None, "no action: reply had no tool call", "hmm"),
    ("e3", 1, None, "no action: reply had no tool call", None),  # no output recorded
    ("e3", 2, None, None, None),  # nothing at all: a 'none' step
    ("e4", 0, ADD, None, "calling add"),  # e4 repeats e1 exactly
    ("e4", 1, ADD, None, "calling add"),
    ("e4", 2, FINAL, None, "Final Answer: 5"),
    ("e5", 0, ADD, None, ""),  # an empty output is not a missing one
    ("e5", 0, ADD, None, ""),  # the same step index twice (a tie in the order)
]


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("step-paths") / "planted.duckdb"
    with Store(path).writer() as con:
        for episode, index, action, error, output in PLANTED:
            con.execute(
                "INSERT INTO typed_steps (episode_id, step_index, action, protocol_error, "
                "output, span_id) VALUES (?, ?, ?, ?, ?, ?)",
                [episode, index, action, error, output, f"{episode}-{index}"],
            )
    return path


def _both(
    path: Path, ids: list[str]
) -> tuple[dict[str, list[T.Action]], dict[str, list[T.Action]]]:
    store = Store(path)
    return T.paths_of(reads.step_rows(store, ids)), T.trajectories(reads.steps_of(store, ids))


@pytest.mark.parametrize("name", ["divergence_store", "dependence_store", "fixture_store"])
def test_arrow_paths_equal_the_frame_paths_on_run_stores(
    name: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(name)
    store = Store(path)
    episodes = with_systems(reads.episodes(store, reads.Selection(), ablations=True))
    ids = list(episodes.episode_id)
    new, frame = _both(path, ids)
    assert len(new) > 1 and new == frame == old_trajectories(reads.steps_of(store, ids))
    assert list(new) == list(frame)  # the same episodes in the same order
    assert set(ids) - set(new) == (set(ids) - set(frame))  # episodes with no step stay out
    if name == "fixture_store":
        kinds = {a.kind for p in new.values() for a in p}
        assert {"tool", "final", "error"} <= kinds


def test_arrow_paths_equal_the_frame_paths_on_planted_steps(planted_store: Path) -> None:
    new, frame = _both(planted_store, ["e1", "e2", "e3", "e4", "e5", "absent"])
    assert new == frame == old_trajectories(reads.steps_of(Store(planted_store), list(new)))
    assert list(new) == ["e1", "e2", "e3", "e4", "e5"]
    assert [a.step_index for a in new["e2"]] == [0, 1, 3]
    assert new["e1"] == new["e4"] and new["e1"][0].key == new["e2"][1].key  # 2.0 == 2
    assert [(a.kind, a.text) for a in new["e3"]] == [
        ("error", "hmm"),
        ("error", None),
        ("none", None),
    ]
    assert new["e5"] == [T.Action("tool", "add", '{"a":2,"b":3}', 0, "")] * 2


def test_arrow_paths_of_several_chunks_and_of_nothing(planted_store: Path) -> None:
    rows = reads.step_rows(Store(planted_store), ["e1", "e2", "e3", "e4", "e5"])
    chunked = pa.concat_tables([rows.slice(0, 4), rows.slice(4, 3), rows.slice(7)])
    assert chunked["output"].num_chunks == 3
    assert T.paths_of(chunked) == T.paths_of(rows)
    assert T.paths_of(rows.slice(0, 0)) == {}


def test_comparison_of_the_planted_divergences_reads_the_same_paths(divergence_store: Path) -> None:
    result = compare(Store(divergence_store), reads.Selection(), clusters=False)
    ids = list(result.episodes.episode_id)
    assert result.paths == T.trajectories(reads.steps_of(Store(divergence_store), ids))
    assert result.divergences[0].table.diverged.any()


def estimates_by_merge(episodes: pd.DataFrame) -> pd.DataFrame:
    """The Compare page's estimates as computed before: both metrics merged on the system."""
    both = stats.estimates_of(episodes, ("success", "score"))
    success, score = both["success"], both["score"][[*stats.SYSTEM_KEYS, "mean", "se"]]
    merged = success.merge(score, on=list(stats.SYSTEM_KEYS), suffixes=("", "_score"))
    merged.insert(0, "system", stats.system_column(merged))
    return merged.rename(
        columns={"mean": "success_rate", "se": "success_se", "se_score": "score_se"}
    )


@pytest.mark.parametrize("name", ["divergence_store", "dependence_store", "fixture_store"])
def test_estimates_side_by_side_equal_the_merged_ones(
    name: str, request: pytest.FixtureRequest
) -> None:
    result = compare(Store(request.getfixturevalue(name)), reads.Selection(), clusters=False)
    episodes = result.episodes
    pd.testing.assert_frame_equal(result.estimates, estimates_by_merge(episodes), check_exact=True)
    # unfinished episodes (no outcome) and a system with no model name are grouped the same way
    partial = episodes.assign(
        outcome=episodes.outcome.where(episodes.index % 3 != 0),
        model=episodes.model.where(episodes.index % 7 != 0),
    )
    pd.testing.assert_frame_equal(
        C._estimates(partial), estimates_by_merge(partial), check_exact=True
    )
    assert stats.finished(episodes) is episodes  # all finished: not copied
    assert len(stats.finished(partial)) < len(partial)


def pairs_by_merge(episodes: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """``pair_episodes`` as it was: sort, keep each task-seed's last row, merge."""
    cols = [*T.PAIR_KEYS, "episode_id", "outcome", "score", "steps", "final_answer"]
    data = episodes.loc[episodes["outcome"].notna(), [*cols, *stats.SYSTEM_KEYS, "started_at"]]
    data = data.assign(system=stats.system_column(data)).sort_values("started_at")
    left = data[data.system == a].drop_duplicates(list(T.PAIR_KEYS), keep="last")[cols]
    right = data[data.system == b].drop_duplicates(list(T.PAIR_KEYS), keep="last")[cols]
    return left.merge(right, on=list(T.PAIR_KEYS), suffixes=("_a", "_b"))


@pytest.mark.parametrize("name", ["divergence_store", "dependence_store", "fixture_store"])
def test_pairs_equal_the_merged_ones(name: str, request: pytest.FixtureRequest) -> None:
    store = Store(request.getfixturevalue(name))
    episodes = with_systems(reads.episodes(store, reads.Selection(), ablations=True))
    variants = {
        "as stored": episodes,
        "every start tied": episodes.assign(started_at=episodes.started_at.min()),
        "missing seeds": episodes.assign(seed=episodes.seed.where(episodes.index % 4 != 0)),
        "unfinished": episodes.assign(outcome=episodes.outcome.where(episodes.index % 5 != 0)),
        "repeated rows and labels": pd.concat([episodes, episodes.iloc[::3]]),
    }
    paired = 0
    for variant in variants.values():
        labels = sorted(variant.system.unique())
        for a, b in [*itertools.product(labels, repeat=2), (labels[0], "nobody")]:  # no pairs
            new = T.pair_episodes(variant, a, b)
            pd.testing.assert_frame_equal(new, pairs_by_merge(variant, a, b), check_exact=True)
            paired += len(new)
    assert paired > 0


def test_a_comparison_without_likelihood_rows_is_the_same_comparison(
    dependence_store: Path, tmp_path: Path
) -> None:
    from tests.test_ui_shards_views import attributed

    store = Store(attributed(dependence_store, tmp_path / "attributed.duckdb", per_token=False))
    full = compare(store, reads.Selection(), clusters=False)
    page = compare(store, reads.Selection(), clusters=False, likelihood=False)  # the app's
    assert len(full.likelihood) > 0 and page.likelihood.empty
    for field in dataclasses.fields(full):
        if field.name in ("likelihood", "clusters"):
            continue
        mine, theirs = getattr(page, field.name), getattr(full, field.name)
        if isinstance(mine, pd.DataFrame):
            pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
        elif isinstance(mine, tuple) and mine and hasattr(mine[0], "table"):
            for x, y in zip(mine, theirs, strict=True):
                pd.testing.assert_frame_equal(x.table, y.table, check_exact=True)
                assert (x.a, x.b) == (y.a, y.b) and str(x.summary) == str(y.summary)
        else:
            assert mine == theirs, field.name
