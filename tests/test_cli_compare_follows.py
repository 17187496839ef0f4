"""`shardscope compare` prints the follow-rate table ("follows the shard") as `ablate` and
`run --ablate` do, on the planted dependence store (tests/analysis_fixtures.py: uses-a reads
shard a, uses-b reads shard b; replacing either by 7 implies 10 or 9), and says why when
there is none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shardscope.analysis.compare import compare
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store
from tests import analysis_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]
TITLE = "follows the shard: answers under a replaced shard (implied_answer)"


def _compare(db: Path, suites: Path | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SHARDSCOPE_SUITES_DIR"}
    if suites is not None:
        env["SHARDSCOPE_SUITES_DIR"] = str(suites)
    out = subprocess.run([sys.executable, "-m", "shardscope", "compare", "--db", str(db),
                          "--no-clusters"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _row(text: str, system: str) -> list[str]:
    """The cells of the follow table's row for ``system`` (the first table naming it after
    the follow table's title)."""
    after = text[text.index(TITLE):]
    line = next(x for x in after.splitlines() if x.strip("│ ").startswith(system))
    return [c.strip() for c in line.strip().strip("│").split("│")]


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def test_compare_prints_the_follow_rates(dependence_store: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    suites = fx.dependence_suite(tmp_path / "suites")
    monkeypatch.setenv("SHARDSCOPE_SUITES_DIR", str(suites))
    rates = compare(Store(dependence_store), Selection(), clusters=False).follows.set_index("model")
    text = _compare(dependence_store, suites)
    assert TITLE in text
    for system in ("uses-a · react-tools", "uses-b · react-tools"):
        cells = _row(text, system)
        r = rates.loc[system]
        assert cells[1:5] == [str(int(r[c])) for c in ("episodes", "follow", "keep", "other")]
        assert r.episodes == fx.DEPENDENCE_TASKS * 3 * 2  # tasks x seeds x replaced shards
        assert cells[5] == _pct(r.follow_rate)
        assert cells[6] == f"[{_pct(r.follow_low)}, {_pct(r.follow_high)}]"
        # the planted prior: with its own shard removed the model cannot answer, and then
        # it follows the replacement; with the other one removed it keeps its answer
        assert re.fullmatch(r"\d+%", cells[8]) and int(cells[8][:-1]) > 80
        assert cells[7] == "0%"


def test_compare_says_why_there_is_no_follow_table(dependence_store: Path,
                                                   divergence_store: Path) -> None:
    # replaced shards, but the shipped suites hold no task "toy": no implied_answer known
    text = _compare(dependence_store, None)
    assert TITLE not in text
    assert "follows the shard: no replaced shard here declares implied_answer" in text
    # no ablation at all
    text = _compare(divergence_store, None)
    assert TITLE not in text
    assert "follows the shard: no replaced-shard episodes in the selection" in " ".join(text.split())
