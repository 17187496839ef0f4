"""The Compare and Shards pages through ``streamlit.testing`` on stores with planted
differences (tests/analysis_fixtures.py): what they show, and how they react."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import analysis_fixtures as fx
from tests.test_ui_app import charts, frame, open_app, texts

COMPARE, SHARDS = "app_pages/compare.py", "app_pages/shards.py"
FOLLOW, LEAD = "follow · react-tools", "lead · react-tools"


def _aligned(at: AppTest):
    return frame(at, "step", "alignment", "first divergence")


def test_compare_shows_deltas_and_the_first_divergence(divergence_store: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(divergence_store, monkeypatch, COMPARE)
    assert at.multiselect(key="compare_systems").value == [FOLLOW, LEAD]
    pairs = frame(at, "a", "b", "p_value", "mde")
    assert (pairs.a[0], pairs.b[0], pairs.tasks[0], pairs["diff"][0]) == (FOLLOW, LEAD, 20, 0.0)
    assert len(charts(at)) >= 3  # success rates, differences, tool shares
    summary = frame(at, "pairs", "identical", "median_first_divergence")
    assert (summary.pairs[0], summary.median_first_divergence[0]) == (40, 2.0)
    # Task t2 (the selectbox shows where it parts): follow adds other numbers at step 2.
    task = at.selectbox(key="compare_task")
    assert "t2 · parts at step 2" in task.options
    task.set_value("t2").run()
    aligned = _aligned(at)
    first = aligned[aligned["first divergence"]]
    assert list(first.step) == [2] and list(first.alignment) == ["same tool, other arguments"]
    assert first[FOLLOW].iloc[0] == 'add({"a":2,"b":102})'
    assert first[LEAD].iloc[0] == 'add({"a":2,"b":2})'
    assert any("First divergence at step 2" in w and "rejoin" in w for w in texts(at.warning))
    assert not at.exception


def test_compare_identical_task_and_too_few_systems(divergence_store: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(divergence_store, monkeypatch, COMPARE)
    at.selectbox(key="compare_task").set_value("t3").run()
    assert any("First divergence at step 3" in w for w in texts(at.warning))  # answers early
    at.multiselect(key="compare_systems").set_value([LEAD]).run()
    assert "Pick at least two" in " ".join(texts(at.info))
    assert not at.exception


def test_compare_clusters_on_demand(divergence_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(divergence_store, monkeypatch, COMPARE)
    at.toggle(key="compare_cluster_on").set_value(True).run()
    occupancy = next(d.value for d in at.dataframe if any(str(c).startswith("cluster") for c in d.value.columns))
    assert set(occupancy.index) == {FOLLOW, LEAD}  # both answer "5": one cluster holds all
    assert not at.exception


def test_compare_on_the_ui_fixture_with_failed_episodes(fixture_store: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(fixture_store, monkeypatch, COMPARE)
    at.multiselect(key="compare_systems").set_value(
        ["alpha · react-tools", "beta · react-tools", "gamma · react-tools"]).run()
    pairs = frame(at, "a", "b", "p_value", "p_adjusted")
    assert len(pairs) == 3  # every pair, Holm-corrected
    alpha_beta = pairs[(pairs.a == "alpha · react-tools") & (pairs.b == "beta · react-tools")].iloc[0]
    assert alpha_beta["diff"] == 1.0 and alpha_beta.p_adjusted >= alpha_beta.p_value
    assert not at.exception


def test_shards_map_ranking_and_drill_down(dependence_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(dependence_store, monkeypatch, SHARDS)
    assert len(charts(at)) == 1  # the influence map
    ranking = frame(at, "model", "shard", "success_drop", "ci_low")
    top = ranking.sort_values("success_drop", ascending=False).groupby("model").head(1)
    assert set(zip(top.model, top.shard, strict=True)) == {("uses-a", "a"), ("uses-b", "b")}
    pairs = frame(at, "base_outcome", "outcome", "base_episode_id", "episode_id")
    assert len(pairs) == 2 * fx.DEPENDENCE_TASKS * 3 * 2 * 2  # models x tasks x seeds x shards x modes
    at.segmented_control(key="shards_mode").set_value("removed").run()
    at.selectbox(key="shards_pick").set_value("a").run()
    at.toggle(key="shards_changed").set_value(True).run()
    changed = frame(at, "base_outcome", "outcome", "base_episode_id")
    assert set(changed.model) == {"uses-a"} and set(changed["mode"]) == {"removed"}
    assert (changed.outcome == "failure").all() and (changed.base_outcome == "success").all()
    assert not at.exception


def test_shards_without_ablations_says_how_to_run_them(divergence_store: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(divergence_store, monkeypatch, SHARDS)
    assert "No ablation episodes here yet" in " ".join(texts(at.info))
    assert "shardscope ablate --db" in " ".join(texts(at.info))
    assert not at.exception


def test_shards_shows_likelihood_influence_beside_outcome_influence(
        dependence_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import numpy as np
    import pandas as pd

    from shardscope.analysis.attribution import ROW_COLUMNS
    from shardscope.tracer.queries.attributions import write_attributions
    from shardscope.tracer.queries.frames import read_frame
    from shardscope.tracer.store import Store

    db = tmp_path / "attributed.duckdb"
    shutil.copy(dependence_store, db)
    store = Store(db)
    calls = read_frame(store, "SELECT run_id, episode_id, span_id, step_index, model, suite, "
                              "task_id FROM llm_calls WHERE ablation_shard IS NULL AND step_index = 0")
    rows = []
    for call in calls.itertuples():  # uses-a leans on shard a (~6 nats), uses-b on b (~1)
        for shard in ("a", "b"):
            leans = call.model == f"uses-{shard}"
            delta = (6.0 if call.model == "uses-a" else 1.0) if leans else 0.1
            delta += 0.01 * int(call.task_id.lstrip("t") or 0)
            rows.append({**call._asdict(), "shard": shard, "shard_kind": "fact", "mode": "removed",
                         "status": "scored", "occurrences": 1, "output_tokens": 5,
                         "base_logp": -1.0, "ablated_logp": -1.0 - delta, "delta_logp": delta,
                         "base_action_logp": -1.0, "ablated_action_logp": -1.0 - delta,
                         "delta_action_logp": delta, "evaluated_tokens": 9, "detail": ""})
    frame_ = pd.DataFrame(rows)
    frame_["step_index"] = frame_.step_index.astype(np.int64)
    assert write_attributions(store, frame_[ROW_COLUMNS[:-2]]) == len(rows)  # no per-token columns

    at = open_app(db, monkeypatch, SHARDS)
    assert len(charts(at)) == 2  # likelihood influence, outcome influence
    profiles = frame(at, "system", "top_shard", "ci_low")
    tops = dict(zip(profiles.system, profiles.top_shard, strict=True))
    assert tops == {"uses-a · react-tools": "a", "uses-b · react-tools": "b"}
    captions = " ".join(texts(at.caption))
    assert "Clearest difference: removing one shard of a task moves uses-a · react-tools's" in captions
    assert not at.exception


def test_shards_without_attributions_says_how_to_score(dependence_store: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(dependence_store, monkeypatch, SHARDS)
    assert "shardscope attribute -s SUITE" in " ".join(texts(at.info))
    assert len(charts(at)) == 1 and not at.exception
