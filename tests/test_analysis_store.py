"""Comparisons read from real stores with planted differences: divergence steps, shard
dependence, the report, and `shardscope compare` / its errors as a user meets them."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from shardscope.analysis import report
from shardscope.analysis.compare import NothingToCompare, compare, influence_for
from shardscope.config.errors import ShardscopeError, StoreNotFoundError
from shardscope.tracer.queries import comparison as reads
from shardscope.tracer.schema import EPISODE_SUMS
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]
LEAD, FOLLOW = "lead · react-tools", "follow · react-tools"


@pytest.fixture(scope="module")
def divergence(divergence_store: Path):
    return compare(Store(divergence_store), reads.Selection(), clusters=False)


def test_planted_divergence_step_is_found_exactly(divergence) -> None:
    (pair,) = divergence.divergences
    assert (pair.a, pair.b) == (FOLLOW, LEAD)
    table = pair.table
    assert len(table) == fx.DIVERGENCE_TASKS * 2  # every task x seed paired
    planted = table.task_id.map(fx.planted_step)
    exact = (table.position == planted) & (table.step_a == planted) & (table.step_b == planted)
    assert exact.mean() >= 0.95, table[~exact][["task_id", "seed", "position", "step_a", "step_b"]]


def test_divergence_context_rejoin_and_summary(divergence) -> None:
    table = divergence.divergences[0].table.set_index(["task_id", "seed"])
    even, odd = table.loc[("t2", 0)], table.loc[("t3", 0)]
    # t2: follow adds other numbers at step 2 (same tool: a 'similar' step), then rejoins.
    assert (even.tool_a, even.tool_b, bool(even.rejoined)) == ("add", "add", True)
    assert even.action_a == 'add({"a":2,"b":102})' and even.action_b == 'add({"a":2,"b":2})'
    # t3: follow answers at step 3 while lead goes on calling add.
    assert (odd.tool_a, odd.tool_b, odd.action_a) == ("(final)", "add", "answer '5'")
    summary = divergence.divergences[0].summary
    assert summary["pairs"] == 40 and summary["identical"] == 0
    assert summary["at_first_step"] == 8  # tasks 0, 5, 10, 15 x 2 seeds
    assert summary["median_first_divergence"] == 2.0
    assert summary["same_outcome"] == 40  # both always answer 5


def test_estimates_and_profiles_from_the_store(divergence) -> None:
    est = divergence.estimates.set_index("system")
    assert list(est.index) == [FOLLOW, LEAD]
    assert (est.loc[LEAD, "success_rate"], est.loc[LEAD, "tasks"], est.loc[LEAD, "episodes"]) == (1.0, 20, 40)
    (c,) = divergence.comparisons.itertuples()
    assert c.diff == 0 and c.p_value == 1.0 and not c.significant
    behaviour = divergence.behaviour.set_index("system")
    assert behaviour.loc[LEAD, "tool_calls_per_episode"] == 5.0
    # follow: 5 calls on even tasks, i % 5 calls on odd ones (answers early)
    odd_calls = sum(i % 5 for i in range(1, 20, 2))
    assert behaviour.loc[FOLLOW, "tool_calls_per_episode"] == pytest.approx((10 * 5 + odd_calls) / 20)
    tools = divergence.tool_profile.set_index("system")
    assert tools.loc[LEAD, "calls"] == 200 and tools.loc[LEAD, "error_rate"] == 0


def test_planted_shard_dependence_is_recovered_with_the_right_ranking(dependence_store: Path) -> None:
    influence = influence_for(Store(dependence_store), reads.Selection())
    assert set(influence["mode"]) == {"removed", "replaced"}
    by_shard = influence.groupby(["model", "shard"]).success_drop.mean().unstack()
    # uses-a depends on a only, uses-b on b only: each ranks its own shard first.
    assert by_shard.loc["uses-a", "a"] > 0.7 and abs(by_shard.loc["uses-a", "b"]) < 0.2
    assert by_shard.loc["uses-b", "b"] > 0.7 and abs(by_shard.loc["uses-b", "a"]) < 0.2
    ranking = {m: list(row.sort_values(ascending=False).index) for m, row in by_shard.iterrows()}
    assert ranking == {"uses-a": ["a", "b"], "uses-b": ["b", "a"]}
    # every ablated episode found its baseline (3 seeds each); the scripted models repeat a
    # task byte for byte but on their unlucky seeds: a cell of three identical pairs is one
    # piece of evidence (no SE), a cell with a differing pair has an SE
    assert (influence.n == 3).all()
    same = influence.identical_repeats == 2
    assert same.any() and (~same).any()
    assert influence[same].success_drop_se.isna().all()
    assert influence[~same].success_drop_se.notna().all()
    # a removed shard changes what uses-a answers: its trajectory moved
    moved = influence.set_index(["model", "shard", "mode", "task_id"]).trajectory_change
    assert moved.loc[("uses-a", "a", "removed", "t1")] > 0 and moved.loc[("uses-a", "b", "removed", "t1")] >= 0


def test_shard_influence_in_the_comparison_and_report(dependence_store: Path, tmp_path: Path) -> None:
    result = compare(Store(dependence_store), reads.Selection(), clusters=True, cluster_method="tfidf")
    assert result.has_ablations and len(result.episodes) == 2 * fx.DEPENDENCE_TASKS * 3  # baselines only
    html = report.write_report(result, tmp_path / "r.html").read_text()
    for heading in ("Outcomes", "Paired differences", "Where trajectories part", "Tool use",
                    "Shard influence", "Behaviour clusters"):
        assert f"<h2>{heading}" in html
    assert html.count("<svg") >= 3 and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    md_path = report.write_report(result, tmp_path / "r.md")
    md = md_path.read_text()
    assert "## Shard influence" in md and "![influence](r_files/influence.svg)" in md
    assert (tmp_path / "r_files" / "influence.svg").read_text().startswith("<svg")
    with pytest.raises(ShardscopeError, match=r"name it \.html or \.md"):
        report.write_report(result, tmp_path / "r.pdf")


def test_nothing_to_compare_errors_are_actionable(divergence_store: Path, tmp_path: Path) -> None:
    store = Store(divergence_store)
    with pytest.raises(NothingToCompare, match="only one model · scaffold"):
        compare(store, reads.Selection(models=("lead",)), clusters=False)
    with pytest.raises(NothingToCompare, match="no finished episode matches.*models in the store: follow, lead"):
        compare(store, reads.Selection(suites=("nope",)), clusters=False)
    with pytest.raises(NothingToCompare, match=r"no episode of model\(s\) gpt-9"):
        compare(store, reads.Selection(models=("lead", "gpt-9")), clusters=False)
    with pytest.raises(StoreNotFoundError):
        compare(Store(tmp_path / "none.duckdb"), reads.Selection(), clusters=False)
    with pytest.raises(ShardscopeError, match="unknown metric"):
        compare(store, reads.Selection(), metric="accuracy")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardscope", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_compare_command_prints_and_writes_the_report(divergence_store: Path, tmp_path: Path) -> None:
    out = _cli("compare", "--db", str(divergence_store), "-m", "lead,follow", "--no-clusters",
               "-o", str(tmp_path / "cmp.html"))
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "paired differences in success" in text and "where trajectories part" in text
    assert "follow · react-tools" in text and "sign-flip permutation" in text
    assert (tmp_path / "cmp.html").exists() and "report:" in text
    bad = _cli("compare", "--db", str(divergence_store), "-m", "lead")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: only one model · scaffold")
    missing = _cli("compare", "--db", str(tmp_path / "nothing.duckdb"), "-m", "a,b")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "error:" in missing.stderr


def test_clusters_separate_models_that_answer_differently() -> None:
    import pandas as pd

    from shardscope.analysis.clusters import cluster_texts

    fruit = ["apples and pears are fruit", "ripe apples, sweet pears", "pears and apples again",
             "a basket of apples and pears"]
    engines = ["the engine turns the wheels", "engines, wheels and gears", "gears drive the wheels",
               "an engine with four wheels"]
    frame = pd.DataFrame({"model": ["x"] * 4 + ["y"] * 4, "text": fruit + engines})
    result = cluster_texts(frame, k=2, method="tfidf")
    assert result.method == "tfidf" and result.k == 2
    occupancy = result.occupancy
    assert sorted(occupancy.max(axis=1).tolist()) == [1.0, 1.0]  # each model in one cluster
    assert occupancy.idxmax(axis=1)["x"] != occupancy.idxmax(axis=1)["y"]
    assert math.isclose(result.summary["size"].sum(), 8)


@pytest.mark.slow
def test_minilm_embeddings_load_offline_and_separate_meanings() -> None:
    import pandas as pd

    from shardscope.analysis.clusters import cluster_texts

    # No shared words inside a group: only a model of meaning puts them together.
    fruit = ["apples are tasty", "I like to eat pears", "bananas grow on trees", "a ripe mango"]
    money = ["the bank raised interest rates", "stock markets fell", "inflation is high",
             "a loan from the bank"]
    frame = pd.DataFrame({"model": ["x"] * 4 + ["y"] * 4, "text": fruit + money})
    result = cluster_texts(frame, k=2, method="minilm")
    assert result.method == "minilm"
    assert result.occupancy.max(axis=1).tolist() == [1.0, 1.0]
    assert result.occupancy.idxmax(axis=1)["x"] != result.occupancy.idxmax(axis=1)["y"]


def test_the_lean_episode_read_agrees_with_the_episodes_view(dependence_store: Path,
                                                             fixture_store: Path) -> None:
    from shardscope.tracer.queries.frames import read_frame

    for db in (dependence_store, fixture_store):  # ablations; failed, errored, retried episodes
        store = Store(db)
        lean = reads.episodes(store, reads.Selection(), ablations=True).set_index("episode_id")
        view = read_frame(store, "SELECT * FROM episodes").set_index("episode_id")
        assert set(lean.index) == set(view.index) and len(lean) > 0
        # one definition (tracer.schema.EPISODE_ROW): the view is the lean row plus its sums
        # (less the columns no comparison reads)
        left_out = {c for c, _ in EPISODE_SUMS} | set(reads.UNREAD)
        assert ["episode_id", *lean.columns] == [c for c in view.reset_index().columns
                                                 if c not in left_out]
        columns = list(lean.columns)
        for text in view.error.dropna().head(1):  # a filter may use a column the read leaves out
            flt = reads.Selection(search=text[:12])
            where, params = flt.where()
            expected = read_frame(store, "SELECT episode_id FROM episodes WHERE outcome IS NOT NULL "
                                         f"AND {where}", params)
            found = reads.episodes(store, flt, ablations=True)
            assert set(found.episode_id) == set(expected.episode_id) and len(found) > 0
        left, right = lean.loc[view.index, columns], view[columns]
        differ = [c for c in columns if not left[c].astype(str).equals(right[c].astype(str))]
        assert differ == (["steps"] if db == fixture_store else []), differ
        # steps: the view counts step spans where an episode recorded none (it errored); the
        # comparison fills those from the steps it reads (compare._with_counts)
        unrecorded = left.steps.isna()
        assert (unrecorded == (view.loc[left.index, "outcome"] == "error")).all()
        steps = reads.steps_of(store, list(view.index))
        expected = read_frame(store, "SELECT episode_id, step_index, CAST(action AS VARCHAR) AS a, "
                                     "protocol_error, output FROM steps ORDER BY ALL")
        got = steps.sort_values(["episode_id", "step_index"]).reset_index(drop=True)
        assert len(got) == len(expected)
        assert got.protocol_error.fillna("").tolist() == expected.protocol_error.fillna("").tolist()
