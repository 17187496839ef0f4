"""The Overview's episode cube comes in the order of its cells (run, suite, task, scaffold,
model, outcome, ablation), so two reads of one store give the same frame row for row (real
DuckDB stores: the UI fixture matrix, and the dependence store with its ablations)."""

from __future__ import annotations

import pandas as pd
import pytest

from shardscope.tracer.queries.overview import episode_cube
from shardscope.tracer.store import Store

CELL = ["run_id", "suite", "task_id", "scaffold", "model", "outcome", "ablated"]


@pytest.mark.parametrize("name", ["fixture_store", "dependence_store"])
def test_cube_rows_are_in_cell_order(name: str, request: pytest.FixtureRequest) -> None:
    store = Store(request.getfixturevalue(name))
    cube = episode_cube(store)
    assert len(cube) > 10 and cube.outcome.nunique() > 1
    assert not cube.duplicated(CELL).any()
    expected = cube.sort_values(CELL, na_position="last", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(cube, expected)
    for _ in range(3):
        pd.testing.assert_frame_equal(episode_cube(store), cube)
    runs = sorted(cube.run_id.dropna().unique())
    one = episode_cube(store, [runs[-1]])
    pd.testing.assert_frame_equal(one, expected[expected.run_id == runs[-1]].reset_index(drop=True))
