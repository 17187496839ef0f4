"""`shardscope attribute --surrogate N`: a ContextCite-style sparse surrogate of each recorded
call's action log p over random shard masks (:mod:`shardscope.analysis.surrogate`), for
tasks with many shards: N forward passes a call, whatever the number of shards, and the
held-out R² says whether the shards act additively enough for the weights to mean much."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from shardscope.analysis import attribution as attr
from shardscope.analysis import stats
from shardscope.analysis.surrogate import fit_surrogate, located_in
from shardscope.commands.attribute import Limits, scorable_calls
from shardscope.config.settings import Settings
from shardscope.scaffolds.tasks.loader import get_suite
from shardscope.scaffolds.tasks.suite import Suite
from shardscope.tracer.queries import attributions as q
from shardscope.tracer.store import Store

COLUMNS = ["model", "suite", "task_id", "episode_id", "span_id", "step_index", "shard",
           "weight", "r2_train", "r2_heldout", "masks", "spread"]


@dataclass
class SurrogateRun:
    """One weight row per fitted call x located shard, and what was not fitted."""

    rows: pd.DataFrame
    unscorable: dict[str, str] = field(default_factory=dict)
    fitted: int = 0  # calls
    too_few: int = 0  # calls with fewer than two located shards: one-shard attribution's job
    forward_passes: int = 0
    seconds: float = 0.0


def run_surrogates(store: Store, settings: Settings, *, run_ids: Sequence[str] = (),
                   models: Sequence[str] = (), masks: int = 32, limits: Limits | None = None,
                   scorers: dict[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None) -> SurrogateRun:
    """Fit the surrogate of every scorable recorded call with two or more located shards."""
    result = SurrogateRun(pd.DataFrame(columns=COLUMNS))
    usable, scorers = scorable_calls(store, settings, run_ids, models, limits, scorers,
                                     result.unscorable)
    tools = q.tool_results(store, list(usable.episode_id.unique()))
    suites: dict[str, Suite] = {}
    rows: list[dict[str, object]] = []
    step_of = pd.to_numeric(usable.step_index, errors="coerce").fillna(-1)
    start = time.perf_counter()
    for number, call in enumerate(usable.itertuples(), 1):
        suite = suites.get(call.suite) or suites.setdefault(
            call.suite, get_suite(call.suite, settings.suites_dir))
        mine = tools[tools.episode_id == call.episode_id]
        results = {name: list(g.result) for name, g in mine.groupby("tool_name")}
        shards = attr.shard_texts(suite.task(call.task_id), results)
        # the episode's earlier outputs (steps recorded without an index count as step -1)
        earlier = usable[(usable.episode_id == call.episode_id) & (step_of < step_of[call.Index])]
        guarded = attr.output_spans(call.prompt, [
            (p, o) for p, o in zip(earlier.prompt, earlier.output, strict=True)
            if isinstance(p, str) and isinstance(o, str)])
        located = [s for s in shards if located_in(call.prompt, s, guarded)]
        if len(located) < 2:
            result.too_few += 1
            continue
        fit = fit_surrogate(call.prompt, call.output, located,
                            scorers[call.model].score_continuation, masks=masks, on_action=True,
                            guarded=guarded)
        result.fitted += 1
        result.forward_passes += fit.masks
        rows += [{"model": call.model, "suite": call.suite, "task_id": call.task_id,
                  "episode_id": call.episode_id, "span_id": call.span_id,
                  "step_index": int(call.step_index or 0), "shard": shard, "weight": weight,
                  "r2_train": fit.r2_train, "r2_heldout": fit.r2_heldout, "masks": fit.masks,
                  "spread": fit.spread}
                 for shard, weight in zip(fit.shards, fit.weights, strict=True)]
        if progress is not None:
            progress(f"[{number}/{len(usable)}] {call.model} {call.suite}/{call.task_id} step "
                     f"{call.step_index}: {len(fit.shards)} shards, held-out R² "
                     f"{fit.r2_heldout:.2f}")
    result.seconds = time.perf_counter() - start
    result.rows = pd.DataFrame(rows, columns=COLUMNS)
    return result


def surrogate_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model x shard: the mean weight over calls, SE clustered by task, and the median
    held-out R² of the fits it came from."""
    out = []
    for (model, shard), group in rows.groupby(["model", "shard"], sort=True):
        est = stats.estimate(group.weight.to_numpy(float), group.task_id.to_numpy())
        out.append({"model": model, "shard": shard, "calls": est.n, "tasks": est.clusters,
                    "mean": est.mean, "se": est.se, "ci_low": est.ci_low, "ci_high": est.ci_high,
                    "r2_heldout": float(np.median(group.r2_heldout))})
    return pd.DataFrame(out, columns=["model", "shard", "calls", "tasks", "mean", "se", "ci_low",
                                      "ci_high", "r2_heldout"])


def print_surrogates(console: Console, run: SurrogateRun) -> None:
    for message in run.unscorable.values():
        console.print(f"[yellow]not scored:[/] {message}")
    table = Table(title="surrogate weights: action log p gained by keeping the shard (Lasso over "
                        "random shard masks; mean over calls, SE clustered by task, 95% CI)",
                  title_justify="left")
    for col in ("model", "shard", "calls", "tasks", "weight", "95% CI", "held-out R² (median)"):
        table.add_column(col, justify="left" if col in ("model", "shard") else "right")
    for r in surrogate_summary(run.rows).itertuples():
        spread = r.se == r.se  # an SE (and interval) needs two calls or more
        table.add_row(r.model, r.shard, str(r.calls), str(r.tasks),
                      f"{r.mean:.2f} ± {r.se:.2f}" if spread else f"{r.mean:.2f}",
                      f"[{r.ci_low:.2f}, {r.ci_high:.2f}]" if spread else "—",
                      f"{r.r2_heldout:.2f}")
    console.print(table)
    fits = run.rows.drop_duplicates("span_id")
    for model, group in fits.groupby("model"):
        r2 = group.r2_heldout.to_numpy(float)
        console.print(f"{model}: {len(group)} call(s) fitted; held-out R² median "
                      f"{np.median(r2):.2f} (min {r2.min():.2f}, max {r2.max():.2f}), "
                      f"{int((r2 >= 0.5).sum())} of {len(r2)} at 0.5 or more; log p moved by "
                      f"{np.median(group.spread):.2f} nats (median SD over the masks: near 0, "
                      "the shards change little and R² means little)")
    console.print(f"cost: {run.forward_passes} forward passes ({run.seconds:.1f} s) for "
                  f"{run.fitted} call(s); {run.too_few} call(s) with fewer than two located shards "
                  "left to one-shard attribution (`shardscope attribute` without --surrogate)")


def surrogate_command(store: Store, settings: Settings, *, run_ids: Sequence[str],
                      models: Sequence[str], masks: int, limits: Limits | None = None) -> int:
    """Fit and print; nothing is written to the store."""
    progress = Console(stderr=True)
    run = run_surrogates(store, settings, run_ids=run_ids, models=models, masks=masks,
                         limits=limits, progress=lambda line: progress.print(
                             line, highlight=False, soft_wrap=True))
    if not run.fitted:
        raise attr.AttributionError(
            f"no call of the selection has two or more shards located in its input "
            f"({run.too_few} call(s) have fewer): the surrogate needs several; run `shardscope "
            "attribute` without --surrogate")
    print_surrogates(Console(), run)
    return 0
