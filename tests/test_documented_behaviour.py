"""What the README promises a newcomer (issue 17, item 5): per-column descriptions in
`query --schema`, the error text of failed tool calls in tool_calls.result, and an ablate
summary that points at an option that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.queries.status import describe_schema
from shardscope.tracer.store import Store

PUBLIC_VIEWS = ("episodes", "steps", "llm_calls", "tool_calls", "messages", "token_events",
                "llm_attempts", "runs", "genai_metrics")


def test_schema_describes_every_column_of_every_view(demo_store: Path) -> None:
    relations = {r.name: r for r in describe_schema(Store(demo_store))}
    for view in PUBLIC_VIEWS:
        missing = [c.name for c in relations[view].columns if not c.description]
        assert not missing, f"{view}: no description for {', '.join(missing)}"
    result = next(c for c in relations["tool_calls"].columns if c.name == "result")
    assert "error text" in (result.description or "")


def test_failed_tool_calls_keep_the_error_text_the_model_was_shown(demo_store: Path) -> None:
    calls = read_frame(Store(demo_store), "SELECT ok, result, error_message FROM tool_calls")
    failed = calls[~calls.ok]
    assert len(failed) > 0
    for row in failed.itertuples():
        assert row.result == f"Error (bad_arguments): {row.error_message}"


def test_the_ablate_summary_points_at_compare_for_the_rest(
        demo_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ablate said "more rows in the report (--report)", an option only compare has."""
    from shardscope.commands import run as run_cli
    from tests.demo_fixtures import ABLATE_SPEC

    store = Store(demo_store)
    run_id = read_frame(store, "SELECT run_id FROM runs WHERE name = 'ablate'").run_id[0]
    run_cli._print_influence(store, ABLATE_SPEC, run_id, limit=2)
    out = " ".join(capsys.readouterr().out.split())
    assert f"more rows in `shardscope compare --run {run_id} --report report.html`" in out
    assert "(--report)" not in out
