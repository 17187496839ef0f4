"""The Compare page's faster read path gives what the slower one gave: both metrics'
estimates from one grouping, likelihood rows through the comparison's own connection, no
ablation query on a store without ablations (real DuckDB stores from
tests/analysis_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shardscope.analysis import stats
from shardscope.analysis.compare import compare
from shardscope.tracer.queries import comparison as reads
from shardscope.tracer.queries.attributions import stored_attributions
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store
from tests.analysis_fixtures import dependence_store, divergence_store  # noqa: F401 (fixtures)
from tests.test_ui_shards_views import attributed


def estimates_row_by_row(episodes: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The estimates as they were computed before: one grouping per metric, ``.loc`` per group."""
    data = stats.finished(episodes)
    values, task = stats.metric_values(data, metric), stats.system_column(data, stats.TASK_KEYS)
    rows = []
    for key, index in data.groupby(list(stats.SYSTEM_KEYS), sort=True, dropna=False).groups.items():
        est = stats.estimate(values.loc[index].to_numpy(), task.loc[index].to_numpy(),
                             weights=np.ones(len(values.loc[index])),
                             repeats=data[stats.REPEAT_KEY].loc[index].to_numpy())
        low, high = stats.rate_interval(est) if metric == "success" else (est.ci_low, est.ci_high)
        rows.append({**dict(zip(stats.SYSTEM_KEYS, key, strict=True)), "episodes": est.n,
                     "tasks": est.clusters, "mean": est.mean, "se": est.se, "ci_low": low,
                     "ci_high": high, "clustered": est.clustered, "identical_repeats": est.repeats})
    return pd.DataFrame(rows, columns=[*stats.SYSTEM_KEYS, *stats.ESTIMATE_COLUMNS])


def episodes_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model in ("m1", "m2", "m3"):
        for task in range(12):
            for repeat in range(3):
                outcome = str(rng.choice(["success", "failure", "error", None]))
                rows.append({"suite": "s", "task_id": f"t{task}", "model": model,
                             "scaffold": "react", "outcome": None if outcome == "None" else outcome,
                             "score": rng.choice([np.nan, 0.0, 0.5, 1.0]),
                             stats.REPEAT_KEY: f"k{task}-{repeat % 2}"})  # repeats 0 and 2 alike
    return pd.DataFrame(rows)


def test_both_metrics_in_one_pass_equal_one_grouping_per_metric() -> None:
    for seed in range(5):
        episodes = episodes_frame(seed)
        # a frame whose index repeats labels (concatenated without ignore_index) as well
        for frame in (episodes, pd.concat([episodes.iloc[:50], episodes.iloc[50:]]).set_axis(
                [i % 60 for i in range(len(episodes))])):
            both = stats.estimates_of(frame, ("success", "score"))
            for metric in ("success", "score"):
                expected = estimates_row_by_row(frame, metric)
                pd.testing.assert_frame_equal(both[metric], expected, check_exact=True)
                pd.testing.assert_frame_equal(stats.estimates(frame, metric), expected,
                                              check_exact=True)
            assert both["success"].identical_repeats.sum() > 0


def test_likelihood_rows_through_the_comparisons_connection(dependence_store: Path,  # noqa: F811
                                                            tmp_path: Path) -> None:
    store = Store(attributed(dependence_store, tmp_path / "attributed.duckdb", per_token=False))
    through_store = stored_attributions(store, suites=("toy",))
    with store.reader() as con:
        con.execute("SELECT count(*) FROM spans").fetchone()  # a result left open, as reads do
        through_connection = stored_attributions(con, suites=("toy",))
    assert len(through_store) > 0
    pd.testing.assert_frame_equal(through_connection, through_store)
    result = compare(store, Selection(suites=("toy",)), clusters=False)
    baselines = set(result.episodes.episode_id)
    expected = through_store[through_store.episode_id.isin(baselines)]
    assert len(result.likelihood) == len(expected) > 0
    assert set(result.likelihood.system) == set(result.systems)


def test_no_ablated_episode_no_ablation_query(divergence_store: Path,  # noqa: F811
                                              dependence_store: Path) -> None:  # noqa: F811
    none = reads.ablation_episodes(Store(divergence_store), Selection())
    assert none.empty
    assert list(none.columns) == list(reads.episodes(Store(divergence_store), Selection()))
    result = compare(Store(divergence_store), Selection(), clusters=False)
    assert result.influence.empty and result.follows.empty
    some = reads.ablation_episodes(Store(dependence_store), Selection())
    assert some.ablation_shard.notna().any() and some.ablation_shard.isna().any()


def test_the_sql_system_label_is_the_python_one() -> None:
    """An episode without a scaffold (an instrumented agent's OTLP traces) is "m · ?" in SQL
    (the systems list, the ``systems`` filter) as in Python; ``concat_ws`` made it "m"."""
    import duckdb

    frame = pd.DataFrame({"model": ["m", "m", None], "scaffold": ["react", None, "s"]})
    con = duckdb.connect()
    con.register("t", frame)
    sql = con.execute(f"SELECT {reads.SYSTEM_SQL} AS system FROM t").df().system.tolist()
    assert sql == stats.system_column(frame).tolist() == ["m · react", "m · ?", "? · s"]
