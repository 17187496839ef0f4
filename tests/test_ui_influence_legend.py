"""The Shards page's outcome-influence map labels its colour legend with a format per value:
without one, a map whose cells all hold one number (every score drop 0) read "0.000000".
On the planted dependence store (tests/analysis_fixtures.py), from the real influence table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shardscope.analysis.compare import ablation_detail
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store
from shardscope.ui import charts
from tests.analysis_fixtures import dependence_store  # noqa: F401  (pytest fixture)


def _legend(chart: object) -> dict[str, object]:
    color = chart.to_dict()["encoding"]["color"]  # type: ignore[attr-defined]
    return dict(color.get("legend") or {})


def test_each_value_has_a_legend_format(dependence_store: Path) -> None:  # noqa: F811
    influence, _ = ablation_detail(Store(dependence_store), Selection())
    assert not influence.empty
    formats = {
        value: _legend(charts.influence_map(influence, value)).get("format")
        for value in ("success_drop", "score_drop", "trajectory_change")
    }
    assert formats == {"success_drop": ".0%", "score_drop": ".2~f", "trajectory_change": ".2~f"}


def test_an_all_zero_map_still_says_0_not_0_000000(dependence_store: Path) -> None:  # noqa: F811
    influence, _ = ablation_detail(Store(dependence_store), Selection())
    flat = influence.assign(score_drop=0.0)  # the HumanEval case: no score moved
    chart = charts.influence_map(flat, "score_drop")
    spec = chart.to_dict()
    assert spec["encoding"]["color"]["field"] == "score_drop"
    # d3-format ".2~f": 0 -> "0", 0.5 -> "0.5", 1 -> "1" (trailing zeros trimmed)
    assert _legend(chart) == {"format": ".2~f"}


def test_the_likelihood_map_legend_is_formatted_too() -> None:
    # all deltas 0 (a shard no output depends on): the same zero-width colour domain
    cells = pd.DataFrame(
        {
            "shard": ["t0 · a"],
            "system": ["m · react-tools"],
            "mean": [0.0],
            "ci_low": [float("nan")],
            "ci_high": [float("nan")],
            "episodes": [1],
        }
    )
    layer = charts.likelihood_map(cells).to_dict()["layer"]
    (rect,) = [part for part in layer if part["mark"]["type"] == "rect"]
    assert rect["encoding"]["color"]["legend"] == {"format": ".2~f"}
