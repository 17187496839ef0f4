"""The comparison's tool use, added up by the store (tracer.queries.comparison.tool_use_of),
equals what it computed in pandas from every tool call before (tool_calls_of), on real
stores: the planted-divergence matrix, the UI fixture's (errored episodes), and one written
here through the tracing pipeline with failed, unrecorded and unnamed tool calls and an
episode that recorded tool calls but no step."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shardscope.analysis import trajectory
from shardscope.analysis.compare import compare, with_systems
from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.queries import comparison as reads
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.spans import Tracing
from shardscope.tracer.store import Store

# Per model: each step's tool calls as (tool name, ok); ok None: not recorded, the span failed.
CALLS = {"m1": [[("add", True), ("add", False)], [("mul", None)], [(None, True)]],
         "m2": [[("add", True)], [("add", False), ("mul", False)]]}


def _tool(tracing: Tracing, name: str | None, ok: bool | None, index: int) -> None:
    attrs = {A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL, A.GEN_AI_TOOL_CALL_ID: f"c{index}"}
    if name is not None:
        attrs[A.GEN_AI_TOOL_NAME] = name
    with tracing.span(f"execute_tool {name}", SpanType.TOOL_CALL, attrs) as span:
        if ok is None:
            span.fail("tool_error", "the tool raised")
        else:
            span.set(A.TOOL_OK, ok)


def _episode(tracing: Tracing, model: str, task: int, stepped: bool) -> None:
    episode = f"{model}-t{task}-{'s' if stepped else 'u'}"
    attrs = {A.EPISODE_ID: episode, A.SUITE_NAME: "tools", A.TASK_ID: f"t{task}",
             A.SCAFFOLD_NAME: "react" if stepped else "foreign", A.MODEL_ID: model, A.SEED: 0}
    with tracing.inherit({A.EPISODE_ID: episode, A.MODEL_ID: model}):
        with tracing.span(f"invoke_agent {model}", SpanType.EPISODE, attrs) as span:
            for index, calls in enumerate(CALLS[model]):
                if not stepped:  # tool spans straight under the episode, as other agents
                    for name, ok in calls:
                        _tool(tracing, name, ok, index)
                    continue
                with tracing.inherit({A.STEP_INDEX: index}):
                    with tracing.span(f"step {index}", SpanType.STEP, {A.STEP_INDEX: index}) as step:
                        step.set(A.STEP_ACTION, {"type": "tool", "tool": "add", "arguments": {}})
                        for name, ok in calls:
                            _tool(tracing, name, ok, index)
            span.set_many({A.EPISODE_OUTCOME: "success" if task % 2 else "failure",
                           A.EPISODE_SCORE: float(task % 2), A.EPISODE_FINAL_ANSWER: "5"})


@pytest.fixture(scope="module")
def tool_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tool-use") / "tools.duckdb"
    tracing = setup_tracing(Settings(db=path, flush_interval=0.1))
    for model in CALLS:
        for task in range(3):
            _episode(tracing, model, task, stepped=task != 2)
    tracing.shutdown()
    return path


def _profile_from_calls(calls: pd.DataFrame, systems: pd.Series) -> pd.DataFrame:
    """The tool profile as the comparison computed it from every call (before SQL did)."""
    data = calls.assign(system=calls.episode_id.map(systems),
                        failed=~calls.ok.fillna(False).astype(bool))
    out = data.groupby(["system", "tool_name"]).agg(calls=("episode_id", "size"),
                                                    error_rate=("failed", "mean")).reset_index()
    out["share"] = out.calls / out.groupby("system").calls.transform("sum")
    return out[["system", "tool_name", "calls", "share", "error_rate"]].sort_values(
        ["system", "calls"], ascending=[True, False], ignore_index=True)


@pytest.fixture(scope="module", params=["divergence_store", "fixture_store", "tool_store"])
def store_reads(request: pytest.FixtureRequest) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, Path]:
    path: Path = request.getfixturevalue(request.param)
    store = Store(path)
    episodes = with_systems(reads.episodes(store, reads.Selection()))
    ids = list(episodes.episode_id)
    return episodes, reads.tool_calls_of(store, ids), reads.tool_use_of(store, ids), path


def test_tool_use_counts_equal_the_per_call_counts(store_reads) -> None:
    _, calls, use, _ = store_reads
    assert len(calls) > 0
    assert use.calls.sum() == len(calls)
    by_sql = use.groupby("episode_id").calls.sum().sort_index()
    by_pandas = calls.groupby("episode_id").size().sort_index()
    assert by_sql.to_dict() == by_pandas.to_dict()
    failed = (~calls.ok.fillna(False).astype(bool)).groupby(calls.episode_id).sum()
    assert use.groupby("episode_id").failed.sum().to_dict() == failed[failed.index.isin(
        use.episode_id)].to_dict()


def test_tool_profile_from_the_store_equals_the_one_from_every_call(store_reads) -> None:
    episodes, calls, use, _ = store_reads
    systems = episodes.set_index("episode_id").system
    before = _profile_from_calls(calls, systems)
    after = trajectory.tool_profile(use, systems)
    pd.testing.assert_frame_equal(after, before, check_dtype=False)
    assert len(after) > 0


def test_the_written_store_has_every_kind_of_call(tool_store: Path) -> None:
    # Otherwise the comparisons above would only ever see named, successful, stepped calls.
    store = Store(tool_store)
    ids = list(reads.episodes(store, reads.Selection()).episode_id)
    use = reads.tool_use_of(store, ids)
    assert use.calls.sum() == 3 * (4 + 3)  # 3 tasks each, one of them without steps
    assert use.failed.sum() == 3 * (2 + 2)  # ok false, or a failed span
    assert use.tool_name.isna().sum() == 3  # m1's unnamed call, stepped and not
    result = compare(store, reads.Selection(suites=("tools",)), clusters=False)
    unstepped = {e: [a.tool for a in p] for e, p in result.paths.items() if e.endswith("-u")}
    assert unstepped == {"m1-t2-u": ["add", "add", "mul", None], "m2-t2-u": ["add", "add", "mul"]}
    profile = trajectory.tool_profile(use).set_index(["system", "tool_name"])
    assert profile.loc[("m2", "add"), "calls"] == 6
    assert profile.loc[("m2", "add"), "error_rate"] == 0.5
    assert profile.loc[("m1", "mul"), "error_rate"] == 1.0  # its span failed


def test_paths_of_unstepped_episodes_are_their_tool_calls(store_reads) -> None:
    episodes, calls, _, path = store_reads
    result = compare(Store(path), reads.Selection(), clusters=False)
    stepped = set(reads.steps_of(Store(path), list(episodes.episode_id)).episode_id)
    expected = trajectory.tool_paths(calls, stepped)
    assert {e: result.paths[e] for e in expected} == expected
    assert set(result.paths) == stepped | set(expected)


def test_the_comparison_counts_each_episodes_calls(store_reads) -> None:
    _, calls, _, path = store_reads
    result = compare(Store(path), reads.Selection(), clusters=False)
    made = calls.groupby("episode_id").size()
    counted = result.episodes.set_index("episode_id").tool_calls
    assert counted.to_dict() == made.reindex(counted.index, fill_value=0).to_dict()
