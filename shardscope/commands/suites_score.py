"""``shardscope suites score``: BFCL and HumanEval scores as the benchmarks define them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from shardscope.analysis.benchmarks import bfcl_scores, humaneval_scores
from shardscope.commands.store import open_store
from shardscope.tracer.queries.benchmarks import benchmark_episodes


def score_frames(db: Path | None, run_ids: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(BFCL scores, HumanEval scores) of the stored baseline episodes (these runs only)."""
    store = open_store(db)
    frame = benchmark_episodes(store, run_ids)
    return bfcl_scores(frame), humaneval_scores(frame)


def print_scores(title: str, scores: pd.DataFrame, console: Console | None = None) -> None:
    console = console or Console()
    if scores.empty:
        return
    grid = Table(title=title, header_style="bold")
    for header in ("model", "scaffold", "metric", "mean", "± SE", "95% CI", "tasks", "episodes"):
        grid.add_column(header, justify="left" if header in ("model", "scaffold", "metric") else "right")
    for row in scores.itertuples():
        grid.add_row(str(row.model), str(row.scaffold), str(row.metric), f"{100 * row.mean:.1f}%",
                     f"{100 * row.se:.1f}" if row.se == row.se else "∅",
                     f"[{100 * row.ci_low:.1f}, {100 * row.ci_high:.1f}]" if row.ci_low == row.ci_low else "∅",
                     str(row.tasks), str(row.episodes))
    console.print(grid)


def score_command(db: Path | None, run_ids: tuple[str, ...]) -> int:
    bfcl, humaneval = score_frames(db, run_ids)
    if bfcl.empty and humaneval.empty:
        Console().print("no BFCL (bfcl-*) or HumanEval (humaneval) episodes in the store; "
                        "import them with `shardscope suites import` and run them first")
        return 1
    print_scores("BFCL (AST checker): accuracy per category; irrelevance beside the call rate on "
                 "relevant items", bfcl)
    print_scores("HumanEval: pass@1 (temperature 0) and unbiased pass@k", humaneval)
    return 0
