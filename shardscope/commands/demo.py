"""``shardscope demo``: the demo matrix, then a small BFCL slice on the three embedded
models, ending with whether their difference on it is real (an interval excluding zero)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from shardscope.commands import run as run_cli
from shardscope.config.settings import Settings
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.tracer.store import Store

BFCL_SUITE = "bfcl-simple"
BFCL_TASKS = 8  # 6 paired items allow at best p = 0.062 (5 discordant pairs); 8 allow 0.008
# BFCL simple: one call per item, so one step each; a short reply budget keeps the base
# model (which writes on until the budget) within the demo's ten minutes.
DEMO_BFCL = MatrixSpec(
    suites=(BFCL_SUITE,),
    models=run_cli.DEMO.models,
    scaffolds=("react-tools",),
    limit_tasks=BFCL_TASKS,
    scaffold_params={"react-tools": {"max_steps": 2, "max_tokens_per_call": 160}},
    name="demo-bfcl",
)


def demo_command(settings: Settings, progress: bool) -> int:
    code = run_cli.execute(run_cli.DEMO, settings, progress=progress)
    if code != 0:
        return code
    difference = _attribute_demo(settings)
    if importlib.util.find_spec("bfcl_eval") is None:
        print("note: the BFCL slice is skipped: its data is not installed "
              "(pip install --no-deps 'bfcl-eval==2026.3.23', or make install)")
        _close(difference)
        return 0
    bfcl_settings = dataclasses.replace(settings, suites_dir=_bfcl_suites(settings))
    code = run_cli.execute(DEMO_BFCL, bfcl_settings, progress=progress)
    if code == 0:
        print_bfcl_verdict(Store(settings.db, settings.lock_timeout))
    _close(difference)
    return code


def _close(difference: str | None) -> None:
    if difference:
        print(f"And by their own probabilities (likelihood attribution): {difference}.")


def _attribute_demo(settings: Settings) -> str | None:
    """Likelihood attribution of the demo run just finished (a cheap slice)."""
    from shardscope.commands.demo_attribution import demo_attribution
    from shardscope.tracer.queries.runs import run_info

    store = Store(settings.db, settings.lock_timeout)
    info = run_info(store)
    return None if info is None else demo_attribution(store, settings, str(info["run_id"]))


def _bfcl_suites(settings: Settings) -> Path:
    """The suites directory holding bfcl-simple: the user's when it has one, else a demo
    directory beside the store with the first items imported into it."""
    from shardscope.scaffolds.tasks import bfcl

    if settings.suites_dir is not None and (settings.suites_dir / f"{BFCL_SUITE}.toml").is_file():
        return settings.suites_dir
    target = settings.suites_dir or settings.db.resolve().parent / "shardscope-demo-suites"
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{BFCL_SUITE}.toml"
    text = bfcl.convert("simple", limit=BFCL_TASKS).text
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # e.g. an older slice
        path.write_text(text, encoding="utf-8")
    return target


def print_bfcl_verdict(store: Store) -> None:
    """The closing summary: each pair of models on the BFCL slice, paired by item."""
    from shardscope.analysis.stats import compare_systems
    from shardscope.tracer.queries.comparison import Selection, episodes
    from shardscope.tracer.queries.runs import run_info

    info = run_info(store)
    if info is None:
        return
    frame = episodes(store, Selection(run_ids=(str(info["run_id"]),), suites=(BFCL_SUITE,)))
    pairs = compare_systems(frame)
    print(f"\nBFCL simple, {BFCL_TASKS} items (AST checker), paired by item:")
    real = []
    for pair in pairs:
        first, second, diff = pair.a, pair.b, pair.diff
        low, high = pair.ci_low, pair.ci_high
        if diff < 0:
            first, second, diff, low, high = second, first, -diff, -high, -low
        # a bootstrap interval of identical differences is a point: ask the exact test too
        excludes = (low > 0 or high < 0) and pair.p_value < pair.alpha
        print(f"  {first} minus {second}: {diff:+.2f} [{low:+.2f}, {high:+.2f}] "
              f"({pair.method}, p={pair.p_value:.3f})"
              + ("  <- the interval excludes zero" if excludes else ""))
        if excludes:
            real.append(f"{first.split(' · ')[0]} beats {second.split(' · ')[0]}")
    if real:
        print("In short: a real difference on a benchmark people know: " + "; ".join(real)
              + " (95% intervals excluding zero).")
    else:
        print("In short: no pair of models differs on this slice with an interval excluding "
              "zero (too few items, or the models tie).")
