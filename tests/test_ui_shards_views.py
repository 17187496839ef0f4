"""The Shards page's three views (likelihood influence, outcome influence, follow rates),
its token drill-down, and the report's same three views, on the planted dependence store
(tests/analysis_fixtures.py: uses-a reads shard a, uses-b reads shard b)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shardscope.analysis.attribution import ROW_COLUMNS
from shardscope.analysis.compare import compare
from shardscope.analysis.report import to_html, to_markdown
from shardscope.tracer.queries.attributions import token_deltas, write_attributions
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx
from tests.analysis_fixtures import dependence_store  # noqa: F401 (a fixture)
from tests.test_ui_app import charts, frame, open_app, texts

SHARDS = "app_pages/shards.py"
USES_A, USES_B = "uses-a · react-tools", "uses-b · react-tools"
TOKENS = ["Final", " Answer", ":", " 5"]


def attributed(source: Path, db: Path, *, per_token: bool) -> Path:
    """A copy of ``source`` with planted attribution rows: uses-a leans on a, uses-b on b;
    with ``per_token`` each row keeps its tokens, the last one (the answer) carrying the Δ."""
    shutil.copy(source, db)
    store = Store(db)
    calls = read_frame(store, "SELECT run_id, episode_id, span_id, step_index, model, suite, "
                              "task_id FROM llm_calls WHERE ablation_shard IS NULL AND step_index = 0")
    rows = []
    for call in calls.itertuples():
        for shard in ("a", "b"):
            delta = (6.0 if call.model == "uses-a" else 1.0) if call.model == f"uses-{shard}" else 0.1
            delta += 0.01 * int(call.task_id.lstrip("t") or 0)
            rows.append({**call._asdict(), "shard": shard, "shard_kind": "fact", "mode": "removed",
                         "status": "scored", "occurrences": 1, "output_tokens": 4,
                         "base_logp": -1.0, "ablated_logp": -1.0 - delta, "delta_logp": delta,
                         "base_action_logp": -1.0, "ablated_action_logp": -1.0 - delta,
                         "delta_action_logp": delta, "evaluated_tokens": 9, "detail": "",
                         "tokens": TOKENS if per_token else None,
                         "token_deltas": [0.0, 0.0, -0.25, delta + 0.25] if per_token else None})
    table = pd.DataFrame(rows)
    table["step_index"] = table.step_index.astype(np.int64)
    assert write_attributions(store, table[ROW_COLUMNS]) == len(rows)
    return db


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = fx.dependence_suite(tmp_path / "suites")
    monkeypatch.setenv("SHARDSCOPE_SUITES_DIR", str(directory))
    return directory


def test_three_views_side_by_side_with_follow_rates(dependence_store: Path, suites: Path,  # noqa: F811
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    db = attributed(dependence_store, tmp_path / "a.duckdb", per_token=True)
    at = open_app(db, monkeypatch, SHARDS)
    assert len(charts(at)) == 4  # likelihood, outcome, follow rates, the step's tokens
    rates = frame(at, "system", "follow_rate", "follow_low", "follow_rate_prior_wrong")
    by = rates.set_index("system")
    assert list(by.index) == [USES_A, USES_B]
    # each model follows the replacement of the shard it reads (a: 10, b: 9) and keeps the
    # answer when the other one is replaced; the "unlucky" episodes answer 6 (other)
    for system in (USES_A, USES_B):
        row = by.loc[system]
        assert row.episodes == fx.DEPENDENCE_TASKS * 3 * 2  # tasks x seeds x shards
        assert 0.3 < row.follow_rate < 0.6 and row.keep >= row.follow - 3
        assert 0.0 <= row.follow_low < row.follow_rate < row.follow_high <= 1.0
        # its prior: with its own shard removed it cannot answer (wrong): it follows then;
        # with the other shard removed it still answers (right): it keeps
        assert row.follow_rate_prior_wrong > 0.8 and row.follow_rate_prior_right == 0.0
    assert not at.exception


def test_token_drill_down_colours_one_steps_tokens(dependence_store: Path,  # noqa: F811
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    db = attributed(dependence_store, tmp_path / "t.duckdb", per_token=True)
    at = open_app(db, monkeypatch, SHARDS)
    first = read_frame(Store(db), "SELECT min(episode_id) AS e FROM attributions "
                                  "WHERE model = 'uses-a'").e[0]
    at.selectbox(key="shards_token_episode").set_value(first).run()
    at.selectbox(key="shards_token_shard").set_value("a (removed)").run()
    shown = " ".join(h.proto.body for h in at.get("html"))
    for token in TOKENS:
        assert f">{token}</span>" in shown
    # the answer token carries the shard's Δ (about 6 nats for uses-a): fully red
    assert "background:rgba(214,96,77,1.00)" in shown and "rgba(67,147,195,0.04)" in shown
    assert any("uses-a · react-tools" in c and "shard a (removed)" in c for c in texts(at.caption))
    assert not at.exception


def test_step_without_per_token_deltas_says_how_to_get_them(dependence_store: Path,  # noqa: F811
                                                             tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    db = attributed(dependence_store, tmp_path / "old.duckdb", per_token=False)
    at = open_app(db, monkeypatch, SHARDS)
    info = " ".join(texts(at.info))
    assert "kept no per-token deltas" in info and "shardscope attribute -s toy" in info
    # and without implied answers (no suite file declares them for toy) the follow view says so
    assert "No follow rates yet" in info and "--mode replaced" in info
    assert not at.exception


def test_report_shows_the_three_views(dependence_store: Path, suites: Path,  # noqa: F811
                                      tmp_path: Path) -> None:
    db = attributed(dependence_store, tmp_path / "r.duckdb", per_token=False)
    comparison = compare(Store(db), Selection(suites=("toy",)), clusters=False)
    html = to_html(comparison)
    row = html[html.index("<div class='views'>"):]
    row = row[:row.index("</div>")]
    assert [row.count(f"<h3>{h}</h3>") for h in ("Likelihood influence", "Outcome influence",
                                                  "Follow rates")] == [1, 1, 1]
    assert row.count("<svg") == 3 and "answers that follow the replaced shard" in row
    # the likelihood cells carry their interval: uses-a's Δ on a is about 6 nats
    assert "t0 · a (removed)" in row and "[6." in row
    follows = comparison.follows.set_index("model")
    assert set(follows.index) == {USES_A, USES_B}
    assert (follows.follow_rate_prior_wrong > 0.8).all()
    assert "Clearest difference:" in html and "Follow rate and the model&#x27;s prior" in html
    markdown = to_markdown(comparison)
    assert "### Follow rates" in markdown and "| system | episodes | tasks |" in markdown


def test_report_without_attributions_or_implied_answers_says_how(dependence_store: Path) -> None:  # noqa: F811
    comparison = compare(Store(dependence_store), Selection(suites=("toy",)), clusters=False)
    html = to_html(comparison)
    assert "run `shardscope attribute -s SUITE`" in html
    assert "No replaced shard here declares the answer it implies" in html
    row = html[html.index("<div class='views'>"):]
    assert row[:row.index("</div>")].count("<svg") == 1  # the outcome map only


def test_old_attribution_table_gains_the_per_token_columns(dependence_store: Path,  # noqa: F811
                                                           tmp_path: Path) -> None:
    """A store whose attributions table predates per-token deltas: it is read (no tokens),
    and the next write adds the columns without losing the old rows."""
    from shardscope.tracer.queries.attributions import stored_attributions

    db = tmp_path / "legacy.duckdb"
    shutil.copy(dependence_store, db)
    store = Store(db)
    span = read_frame(store, "SELECT span_id FROM llm_calls LIMIT 1").span_id[0]
    legacy_ddl = ("CREATE TABLE attributions (run_id VARCHAR, episode_id VARCHAR, span_id VARCHAR, "
                  "step_index BIGINT, model VARCHAR, suite VARCHAR, task_id VARCHAR, shard VARCHAR, "
                  "shard_kind VARCHAR, mode VARCHAR, status VARCHAR, occurrences INTEGER, "
                  "output_tokens INTEGER, base_logp DOUBLE, ablated_logp DOUBLE, delta_logp DOUBLE, "
                  "base_action_logp DOUBLE, ablated_action_logp DOUBLE, delta_action_logp DOUBLE, "
                  "evaluated_tokens BIGINT, detail VARCHAR, scored_at TIMESTAMPTZ DEFAULT current_timestamp)")
    with store.writer() as con:
        con.execute(legacy_ddl)
        con.execute("INSERT INTO attributions (span_id, shard, mode, status, suite, delta_logp) "
                    "VALUES (?, 'a', 'removed', 'scored', 'toy', 1.5)", [span])
    assert token_deltas(store, span, "a", "removed").empty
    assert stored_attributions(store, suites=("toy",)).delta_logp.tolist() == [1.5]
    attributed(dependence_store, db := tmp_path / "legacy2.duckdb", per_token=True)
    new = Store(db)
    other = read_frame(new, "SELECT span_id FROM attributions LIMIT 1").span_id[0]
    assert token_deltas(new, other, "a", "removed").token.tolist() == TOKENS
    # the legacy store gains the columns on its next write; its old row stays, tokenless
    row = read_frame(new, "SELECT * FROM attributions WHERE span_id = ? AND shard = 'a'", [other])
    row = row.drop(columns=["scored_at"]).assign(span_id="fresh-span")
    assert write_attributions(store, row) == 1
    assert token_deltas(store, "fresh-span", "a", "removed").token.tolist() == TOKENS
    assert token_deltas(store, span, "a", "removed").empty
    assert len(stored_attributions(store, suites=("toy",))) == 2
