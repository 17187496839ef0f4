"""`shardscope compare` and the influence table `shardscope ablate` prints: the terminal face
of :mod:`shardscope.analysis.compare`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from shardscope.analysis.compare import Comparison, compare
from shardscope.analysis.influence import excluded_note
from shardscope.analysis.report import format_value, write_report
from shardscope.commands import output
from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.store import Store


def _fmt(value: Any, percent: bool = False) -> str:
    return format_value(value, percent, digits=0)


def _pm(mean: float, se: float) -> str:
    return f"{_fmt(mean, True)} ± {_fmt(se, True)}"


def _ci(low: float, high: float, percent: bool = True) -> str:
    return f"[{_fmt(low, percent)}, {_fmt(high, percent)}]"


def print_estimates(console: Console, c: Comparison) -> None:
    table = Table(title="outcomes per model · scaffold (± SE clustered by task)", title_justify="left")
    for col in ("system", "episodes", "tasks", "success", "95% CI", "mean score"):
        table.add_column(col, justify="left" if col == "system" else "right")
    for r in c.estimates.itertuples():
        table.add_row(r.system, str(r.episodes), str(r.tasks), _pm(r.success_rate, r.success_se),
                      _ci(r.ci_low, r.ci_high), f"{_fmt(r.mean_score)} ± {_fmt(r.score_se)}")
    console.print(table)


def print_differences(console: Console, c: Comparison) -> None:
    percent = c.metric == "success"
    table = Table(title=f"paired differences in {c.metric} (a − b, same tasks; "
                        f"{c.correction} correction)", title_justify="left")
    for col in ("a", "b", "tasks", "diff", "95% CI", "p", "p adj.", "MDE", "test"):
        table.add_column(col, justify="left" if col in ("a", "b", "test") else "right")
    for r in c.comparisons.itertuples():
        mark = "[bold red]" if r.significant else ""
        table.add_row(r.a, r.b, str(r.tasks), f"{mark}{_fmt(r.diff, percent)}",
                      _ci(r.ci_low, r.ci_high, percent), _fmt(r.p_value), _fmt(r.p_adjusted),
                      _fmt(r.mde, percent), r.method)
    console.print(table)


def print_divergences(console: Console, c: Comparison) -> None:
    table = Table(title="where trajectories part (same task and seed)", title_justify="left")
    for col in ("a", "b", "pairs", "identical", "median step", "at step 0", "rejoin",
                "distance", "most often"):
        table.add_column(col, justify="left" if col in ("a", "b", "most often") else "right")
    for d in c.divergences:
        s = d.summary
        top = s.get("top_divergences") or []
        table.add_row(d.a, d.b, str(s.get("pairs", 0)), str(s.get("identical", 0)),
                      _fmt(s.get("median_first_divergence", math.nan)),
                      str(s.get("at_first_step", 0)), _fmt(s.get("rejoin_rate", math.nan), True),
                      _fmt(s.get("mean_distance", math.nan)),
                      f"{top[0]['a']} vs {top[0]['b']}" if top else "–")
    console.print(table)


def print_follows(console: Console, pairs: pd.DataFrame, suites_dir: Path | None = None) -> None:
    """Per model: how often a replaced shard's implied answer was followed, the original kept,
    or neither (only shards declaring ``implied_answer``); nothing without replaced shards."""
    from shardscope.analysis import follows

    if pairs.empty or "replaced" not in set(pairs["mode"]):
        return
    print_follow_rates(console, follows.follow_table(pairs, follows.suite_tasks(suites_dir)))


def print_follow_rates(console: Console, rates: pd.DataFrame, *, replaced: bool = True,
                       label: str = "model") -> None:
    """The follow-rate table (:func:`shardscope.analysis.follows.follow_table`), or why there
    is none: ``replaced`` says whether the selection has replaced-shard episodes at all;
    ``label`` names what the ``model`` column holds."""
    if rates.empty:
        console.print("follows the shard: no replaced shard here declares implied_answer"
                      if replaced else
                      "follows the shard: no replaced-shard episodes in the selection "
                      "(`shardscope ablate --mode replaced` measures them)")
        return
    table = Table(title="follows the shard: answers under a replaced shard (implied_answer)",
                  title_justify="left")
    for col in (label, "episodes", "follow", "keep", "other", "follow rate", "95% CI",
                "prior right", "prior wrong"):
        table.add_column(col, justify="left" if col == label else "right")
    for r in rates.itertuples():
        table.add_row(r.model, str(r.episodes), str(r.follow), str(r.keep), str(r.other),
                      _fmt(r.follow_rate, True),
                      f"[{_fmt(r.follow_low, True)}, {_fmt(r.follow_high, True)}]",
                      _fmt(r.follow_rate_prior_right, True),
                      _fmt(r.follow_rate_prior_wrong, True))
    console.print(table)


def print_influence(console: Console, influence: pd.DataFrame, limit: int = 30,
                    more: str = "in the report (--report)") -> None:
    """The shard influence table, its first ``limit`` rows; ``more`` says where the rest are."""
    if influence.empty:
        console.print("no ablation episodes in the selection: `shardscope ablate` measures "
                      "which shards each model depends on")
        return
    table = Table(title="shard influence: success drop when the shard is ablated (95% CI)",
                  title_justify="left")
    for col in ("task", "shard", "mode", "model · scaffold", "n", "success drop", "95% CI",
                "score drop", "trajectory change"):
        table.add_column(col, justify="right" if col in ("n", "success drop", "95% CI",
                                                          "score drop", "trajectory change")
                         else "left")
    ranked = influence.sort_values(["success_drop", "score_drop"], ascending=False)
    for r in ranked.head(limit).itertuples():
        table.add_row(f"{r.suite}/{r.task_id}", r.shard, r.mode, f"{r.model} · {r.scaffold}",
                      str(r.n), _fmt(r.success_drop, True), _ci(r.ci_low, r.ci_high),
                      _fmt(r.score_drop), _fmt(r.trajectory_change))
    console.print(table)
    if len(influence) > limit:
        console.print(f"… {len(influence) - limit} more rows {more}")
    note = excluded_note(influence)
    if note:
        console.print(f"[yellow]{note}[/]")


def print_pooled_influence(console: Console, pooled: pd.DataFrame) -> None:
    """Shard names measured on two or more tasks, each pooled over its tasks
    (:func:`shardscope.analysis.influence.pooled_influence`); nothing where no name recurs."""
    if pooled.empty:
        return
    table = Table(title="shard influence pooled over tasks: each shard name on 2 or more tasks "
                        "(95% CI clustered by task)", title_justify="left")
    for col in ("shard", "mode", "model · scaffold", "tasks", "n", "success drop", "95% CI",
                "score drop", "trajectory change"):
        table.add_column(col, justify="left" if col in ("shard", "mode", "model · scaffold")
                         else "right")
    for r in pooled.sort_values(["suite", "shard", "mode", "model", "scaffold"]).itertuples():
        table.add_row(f"{r.suite}/{r.shard}", r.mode, f"{r.model} · {r.scaffold}", str(r.tasks),
                      str(r.n), _fmt(r.success_drop, True), _ci(r.ci_low, r.ci_high),
                      _fmt(r.score_drop), _fmt(r.trajectory_change))
    console.print(table)


def print_clusters(console: Console, c: Comparison) -> None:
    if c.clusters is None or c.clusters.summary.empty:
        return
    table = Table(title=f"behaviour clusters of final answers ({c.clusters.method}, "
                        f"k={c.clusters.k})", title_justify="left")
    for col in ("cluster", "size", "label", "systems", "nearest member"):
        table.add_column(col)
    for r in c.clusters.summary.itertuples():
        table.add_row(str(r.cluster), str(r.size), r.label, r.models,
                      (r.representatives[0] if r.representatives else "")[:60])
    console.print(table)


def print_format_vs_substance(console: Console, store: Store, selection: Selection,
                              suites_dir: Path | None = None) -> pd.DataFrame:
    """Per model x scaffold: how much of the strict failure is the protocol alone (the last
    reply, read leniently, is right) and how much is the answer (docs/comparison.md)."""
    from shardscope.analysis import protocol
    from shardscope.scaffolds.tasks.loader import load_suites
    from shardscope.tracer.queries.protocol import last_replies

    suites = load_suites(suites_dir)

    def check(suite: str, task_id: str) -> Any:
        found = suites.get(suite)
        task = next((t for t in found.tasks if t.id == task_id), None) if found else None
        return task.check if task else None

    table_rows = protocol.format_vs_substance(
        protocol.rejudge(last_replies(store, selection), check))
    if table_rows.empty or not table_rows.off_protocol.any():
        return table_rows
    table = Table(title="format vs substance: off-protocol endings re-judged leniently "
                        "(the strict outcome stands)", title_justify="left")
    for col in ("model", "scaffold", "episodes", "failures", "off protocol", "right if read",
                "wrong anyway", "not judged", "protocol share of failure"):
        table.add_column(col, justify="left" if col in ("model", "scaffold") else "right")
    for r in table_rows.itertuples():
        table.add_row(r.model, r.scaffold, str(r.episodes), str(r.failures), str(r.off_protocol),
                      str(r.protocol_only), str(r.answer_wrong), str(r.not_judged),
                      _fmt(r.protocol_share, True))
    console.print(table)
    return table_rows


def compare_command(store: Store, selection: Selection, *, metric: str, alpha: float,
                    correction: str, report: Path | None, clusters: bool,
                    embedding: str) -> Comparison:
    """Compute the comparison, print it, and write the report when asked."""
    console = output.console()
    result = compare(store, selection, metric=metric, alpha=alpha, correction=correction,
                     clusters=clusters, cluster_method=embedding)
    print_estimates(console, result)
    print_differences(console, result)
    print_divergences(console, result)
    print_influence(console, result.influence)
    print_pooled_influence(console, result.pooled_influence)
    replaced = result.has_ablations and "replaced" in set(result.influence["mode"])
    print_follow_rates(console, result.follows, replaced=replaced, label="model · scaffold")
    print_format_vs_substance(console, store, selection)
    print_clusters(console, result)
    for note in result.notes:
        console.print(f"note: {note}", style="dim")
    if report is not None:
        written = write_report(result, report)
        console.print(f"report: {written.absolute()}")
    return result
