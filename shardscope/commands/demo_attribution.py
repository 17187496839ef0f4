"""The demo's likelihood attribution: a cheap slice (the first call of each react-tools
episode of the arithmetic suite, outputs cut to their first characters, shards removed) scored
by each embedded model, stored for the Shards page, and the closing line naming one concrete
difference between the models' profiles."""

from __future__ import annotations

import time

from shardscope.analysis import attribution as attr
from shardscope.analysis import stats
from shardscope.commands.attribute import Limits, run_attribution
from shardscope.config.settings import Settings
from shardscope.tracer.queries import attributions as q
from shardscope.tracer.store import Store

# A tool call or a short answer fits in 160 characters; the base model's long continuations
# are what made full scoring cost minutes (Gemma's 262k-word output layer per token).
DEMO_LIMITS = Limits(suites=("arithmetic",), scaffolds=("react-tools",), steps=1,
                     output_chars=160)


def demo_attribution(store: Store, settings: Settings, run_id: str) -> str | None:
    """Score the demo's slice, store it, print each model's profile; the difference found."""
    started = time.perf_counter()
    try:
        run = run_attribution(store, settings, run_ids=(run_id,), modes=("removed",),
                              limits=DEMO_LIMITS)
    except attr.AttributionError as exc:
        print(f"note: likelihood attribution skipped: {exc}")
        return None
    rows = q.stored_attributions(store, run_ids=(run_id,))
    rows = rows.assign(system=stats.system_column(rows))
    profiles = attr.model_profiles(rows, by="system")
    print(f"\nLikelihood attribution (arithmetic, react-tools, first call, shard removed; "
          f"{run.forward_passes} forward passes in {time.perf_counter() - started:.0f} s):")
    for p in profiles.itertuples():
        print(f"  {p.system}: Δ log p of its action per removed shard {p.mean:.2f} "
              f"[{p.ci_low:.2f}, {p.ci_high:.2f}] over {p.cells} shards of {p.tasks} tasks; "
              f"most: {p.top_shard} ({p.top_delta:.2f})")
    for message in run.unscorable.values():
        print(f"  not scored: {message}")
    difference = attr.clearest_difference(profiles, by="system")
    print("  " + (f"Concretely: {difference}." if difference else
                  "Fewer than two models were scored: no difference to name."))
    print("  The Shards page shows the map (shards x models) beside outcome ablation.")
    return difference
