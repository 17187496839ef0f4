"""Shards: which pieces of a task's world each model depends on. The influence map (shards x
model · scaffold, from `shardscope ablate` runs) with intervals, and a drill-down to the
ablated episodes beside their baselines."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shardscope.analysis import attribution as attr
from shardscope.tracer.queries.comparison import Selection
from shardscope.ui import charts, data, navigation, widgets

VALUES = {"success_drop": "success drop", "score_drop": "score drop",
          "trajectory_change": "trajectory change"}
HOW_TO = """\
No ablation episodes here yet. Measure which shards each model depends on with

```
shardscope ablate --db {path} -s {suite} -m MODEL_A,MODEL_B -a react-tools --limit 4
```

Each task's declared shards (facts, documents, rows, files, tool results) are removed or
replaced by a plausible wrong value, one at a time, and every ablated episode is compared
with its baseline (same task, model, scaffold and seed).
"""
LIKELIHOOD_HOW_TO = """\
No likelihood attribution for this suite yet. Score the recorded outputs with each shard
removed or replaced (one forward pass per shard, no new episodes; local models):

```
shardscope attribute -s SUITE --mode removed
```
"""
PAIR_COLUMNS = ["task_id", "shard", "mode", "model", "scaffold", "seed", "base_outcome", "outcome",
                "final_answer", "trajectory_change", "base_episode_id", "episode_id"]


def render() -> None:
    st.title("Shards")
    ctx, _ = widgets.ready_store()
    available = data.systems(ctx.path, ctx.version)
    suites = sorted(available.suite.dropna().unique())
    if not suites:
        st.info("No finished episode yet.")
        return
    with_ablations = sorted(available[available.ablated > 0].suite.unique())
    attributed = data.attributions(ctx.path, ctx.version, "")
    with_attributions = sorted(attributed.suite.dropna().unique())
    preferred = sorted(set(with_ablations) | set(with_attributions))
    cells = st.columns([1, 1, 2])
    suite = cells[0].selectbox("Suite", preferred or suites, key="shards_suite")
    mode = cells[1].segmented_control("Ablation", ["removed", "replaced", "both"],
                                      default="both", key="shards_mode") or "both"
    value = cells[2].segmented_control("Colour by", list(VALUES), format_func=lambda v: VALUES[v],
                                       default="success_drop", key="shards_value") or "success_drop"
    _likelihood(attributed[attributed.suite == suite], mode)
    influence, pairs = data.ablations(ctx.path, ctx.version, Selection(suites=(suite,)))
    st.subheader("Outcome influence")
    if influence.empty:
        st.info(HOW_TO.format(path=ctx.path, suite=suite))
        return
    shown = _by_mode(influence, mode)
    st.caption("Baseline minus ablated outcome: how much each model's behaviour depends on the "
               "shard (hover for the 95% interval, pairs and trajectory change).")
    st.altair_chart(charts.influence_map(shown, value), width="stretch")
    _ranking(shown)
    _drill_down(pairs, mode)


def _likelihood(rows: pd.DataFrame, mode: str) -> None:
    """The likelihood-influence map (from `shardscope attribute`) and each system's profile."""
    st.subheader("Likelihood influence")
    if mode != "both":
        rows = rows[rows["mode"] == mode]
    if rows.empty or not (rows.status == "scored").any():
        st.info(LIKELIHOOD_HOW_TO)
        return
    rows = rows.assign(system=rows.model + " · " + rows.scaffold.fillna("?"))
    cells = attr.attribution_summary(
        rows.assign(model=rows.system, shard=rows.task_id + " · " + rows["shard"]))
    cells = cells[cells.episodes > 0].rename(columns={"model": "system"})
    if mode == "both":
        cells = cells.assign(shard=cells["shard"] + " (" + cells["mode"] + ")")
    st.caption("Δ log p of the model's own recorded action when the shard is ablated, the "
               "same output scored teacher-forced (positive: the shard supported what the "
               "model did). Mean per episode; 95% interval clustered by task where a cell "
               "has more than one episode.")
    st.altair_chart(charts.likelihood_map(cells), width="stretch")
    profiles = attr.model_profiles(rows, by="system")
    st.dataframe(profiles.rename(columns={"cells": "shards × episodes"}), hide_index=True,
                 width="stretch", key="shards_likelihood_profiles", column_config={
                     "mean": st.column_config.NumberColumn("Δ log p per shard", format="%.2f"),
                     "se": st.column_config.NumberColumn(format="%.2f"),
                     "ci_low": st.column_config.NumberColumn("95% low", format="%.2f"),
                     "ci_high": st.column_config.NumberColumn("95% high", format="%.2f"),
                     "top_delta": st.column_config.NumberColumn("its Δ", format="%.2f")})
    difference = attr.clearest_difference(profiles, by="system")
    if difference:
        st.caption(f"Clearest difference: {difference}.")


def _by_mode(influence: pd.DataFrame, mode: str) -> pd.DataFrame:
    """One row per task · shard · system: the chosen mode, or both modes pooled."""
    if mode != "both":
        return influence[influence["mode"] == mode]
    keys = ["suite", "task_id", "shard", "model", "scaffold"]
    weighted = influence.assign(w=influence.n)
    pooled = weighted.groupby(keys).apply(lambda g: pd.Series({
        "n": int(g.n.sum()),
        "success_drop": (g.success_drop * g.w).sum() / g.w.sum(),
        "score_drop": (g.score_drop * g.w).sum() / g.w.sum(),
        "trajectory_change": (g.trajectory_change * g.w).sum() / g.w.sum(),
        # the larger of the two modes' intervals: pooled pairs are not independent
        "ci_low": g.ci_low.min(), "ci_high": g.ci_high.max(),
    }), include_groups=False)
    return pooled.reset_index()


def _ranking(shown: pd.DataFrame) -> None:
    st.subheader("Ranking per model")
    table = shown.sort_values(["model", "scaffold", "success_drop"], ascending=[True, True, False])
    table = widgets.with_dashes(table, ("ci_low", "ci_high"))
    st.dataframe(table[["model", "scaffold", "task_id", "shard", "n", "success_drop", "ci_low",
                        "ci_high", "score_drop", "trajectory_change"]],
                 hide_index=True, width="stretch", key="shards_ranking", column_config={
                     "success_drop": st.column_config.NumberColumn("success drop", format="percent"),
                     "ci_low": st.column_config.TextColumn("95% low"),
                     "ci_high": st.column_config.TextColumn("95% high"),
                     "score_drop": st.column_config.NumberColumn("score drop", format="%.2f"),
                     "trajectory_change": st.column_config.NumberColumn("trajectory change",
                                                                        format="%.2f")})


def _drill_down(pairs: pd.DataFrame, mode: str) -> None:
    st.subheader("Ablated episodes")
    rows = pairs if mode == "both" else pairs[pairs["mode"] == mode]
    cells = st.columns(3)
    shard = cells[0].selectbox("Shard", ["all", *sorted(rows.shard.unique())], key="shards_pick")
    model = cells[1].selectbox("Model", ["all", *sorted(rows.model.unique())], key="shards_model")
    changed = cells[2].toggle("Only where the outcome changed", key="shards_changed")
    if shard != "all":
        rows = rows[rows.shard == shard]
    if model != "all":
        rows = rows[rows.model == model]
    if changed:
        rows = rows[rows.outcome != rows.base_outcome]
    st.caption(f"{len(rows):,} ablated episodes · select one to open its trace (its baseline "
               "is linked from the row)")
    rows = rows[PAIR_COLUMNS].reset_index(drop=True)
    event = st.dataframe(rows, hide_index=True, width="stretch", key="shards_pairs",
                         on_select="rerun", selection_mode="single-row", column_config={
                             "base_outcome": st.column_config.TextColumn("baseline outcome"),
                             "outcome": st.column_config.TextColumn("ablated outcome"),
                             "trajectory_change": st.column_config.NumberColumn(format="%.2f")})
    picked = event.selection.rows if event is not None else []
    if picked:
        row = rows.iloc[picked[0]]
        links = st.columns(2)
        links[0].page_link(navigation.TRACE_PAGE, label="open the ablated episode",
                           icon=":material/account_tree:", query_params={"episode": row.episode_id})
        links[1].page_link(navigation.TRACE_PAGE, label="open its baseline",
                           icon=":material/account_tree:",
                           query_params={"episode": row.base_episode_id})


if __name__ == "__main__":
    render()
