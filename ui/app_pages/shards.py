"""Shards: which pieces of a task's world each model depends on. The influence map (shards x
model · scaffold, from `shardscope ablate` runs) with intervals, and a drill-down to the
ablated episodes beside their baselines."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from shardscope.analysis import attribution as attr
from shardscope.analysis.stats import system_column
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


FOLLOW_HOW_TO = """\
No follow rates yet: they need `shardscope ablate --mode replaced` episodes of shards that
declare the answer their replacement implies (`implied_answer` in the suite file), e.g.

```
shardscope ablate -s arithmetic -m MODEL_A,MODEL_B -a react-tools --mode replaced --limit 4
```
"""


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
    selection = Selection(suites=(suite,))
    scored = _scored(attributed[attributed.suite == suite], mode)
    influence, pairs = data.ablations(ctx.path, ctx.version, selection)
    shown = _by_mode(influence, mode) if not influence.empty else influence
    rates = data.follows(ctx.path, ctx.version, selection)
    views = st.columns(3)
    with views[0]:
        profiles = _likelihood(scored)
    with views[1]:
        _outcome(shown, value, ctx.path, suite)
    with views[2]:
        _follow_view(rates)
    if profiles is not None:
        _profiles(profiles)
    if not rates.empty:
        _follow_table(rates)
    if not scored.empty:
        _token_drill_down(ctx, scored)
    if not shown.empty:
        _ranking(shown)
        _drill_down(pairs, mode)


def _scored(rows: pd.DataFrame, mode: str) -> pd.DataFrame:
    """The suite's attribution rows of this mode, empty when none was scored."""
    if mode != "both":
        rows = rows[rows["mode"] == mode]
    if rows.empty or not (rows.status == "scored").any():
        return rows.iloc[0:0]
    return rows.assign(system=system_column(rows))


def _likelihood(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The likelihood-influence map (from `shardscope attribute`); each system's profile."""
    st.subheader("Likelihood influence")
    if rows.empty:
        st.info(LIKELIHOOD_HOW_TO)
        return None
    cells = attr.attribution_summary(
        rows.assign(model=rows.system, shard=rows.task_id + " · " + rows["shard"]))
    cells = cells[cells.episodes > 0].rename(columns={"model": "system"})
    if cells["mode"].nunique() > 1:
        cells = cells.assign(shard=cells["shard"] + " (" + cells["mode"] + ")")
    st.caption("Δ log p of the model's own recorded action when the shard is ablated, the "
               "same output scored teacher-forced (positive: the shard supported what the "
               "model did). Mean per episode; 95% interval clustered by task where a cell "
               "has more than one episode.")
    st.altair_chart(charts.likelihood_map(cells), width="stretch")
    return attr.model_profiles(rows, by="system")


def _profiles(profiles: pd.DataFrame) -> None:
    st.subheader("Likelihood profile per system")
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


def _outcome(shown: pd.DataFrame, value: str, path: str, suite: str) -> None:
    st.subheader("Outcome influence")
    if shown.empty:
        st.info(HOW_TO.format(path=path, suite=suite))
        return
    st.caption("Baseline minus ablated outcome: how much each model's behaviour depends on the "
               "shard (hover for the 95% interval, pairs and trajectory change).")
    st.altair_chart(charts.influence_map(shown, value), width="stretch")


def _follow_view(rates: pd.DataFrame) -> None:
    st.subheader("Follow rates")
    if rates.empty:
        st.info(FOLLOW_HOW_TO)
        return
    st.caption("Answers under a replaced shard: the answer the replacement implies (follow), "
               "the original answer (keep) or another. Black: the follow rate's 95% interval "
               "(clustered by task).")
    st.altair_chart(charts.follow_bars(rates), width="stretch")


def _follow_table(rates: pd.DataFrame) -> None:
    st.subheader("Follow rate and the model's prior")
    st.caption("Prior: the same episode with the shard removed. Right: it still answered "
               "correctly without the shard (the model knew), wrong: it did not. A model that "
               "follows less when its prior is right trusts what it knows over the context.")
    table = rates.rename(columns={"model": "system"})
    st.dataframe(table[["system", "episodes", "tasks", "follow", "keep", "other", "follow_rate",
                        "follow_low", "follow_high", "prior_right", "follow_rate_prior_right",
                        "prior_wrong", "follow_rate_prior_wrong"]],
                 hide_index=True, width="stretch", key="shards_follows", column_config={
                     "follow_rate": st.column_config.NumberColumn("follow rate", format="percent"),
                     "follow_low": st.column_config.NumberColumn("95% low", format="percent"),
                     "follow_high": st.column_config.NumberColumn("95% high", format="percent"),
                     "prior_right": st.column_config.NumberColumn("prior right (n)"),
                     "follow_rate_prior_right": st.column_config.NumberColumn(
                         "follow rate, prior right", format="percent"),
                     "prior_wrong": st.column_config.NumberColumn("prior wrong (n)"),
                     "follow_rate_prior_wrong": st.column_config.NumberColumn(
                         "follow rate, prior wrong", format="percent")})


def _token_drill_down(ctx: data.Context, scored: pd.DataFrame) -> None:
    st.subheader("Tokens of one step")
    st.caption("Pick a scored step: its output tokens coloured by Δ log p when the shard is "
               "ablated (red: the shard supported the token, blue: the token was likelier "
               "without it).")
    rows = scored[scored.status == "scored"]
    cells = st.columns(3)
    episode = cells[0].selectbox("Episode", sorted(rows.episode_id.unique()),
                                 format_func=lambda e: _episode_label(rows, e),
                                 key="shards_token_episode")
    mine = rows[rows.episode_id == episode]
    step = cells[1].selectbox("Step", sorted(mine.step_index.unique()), key="shards_token_step")
    mine = mine[mine.step_index == step]
    choices = [f"{r.shard} ({r.mode})" for r in mine.itertuples()]
    picked = cells[2].selectbox("Shard", choices, key="shards_token_shard")
    row = mine.iloc[choices.index(picked)] if picked in choices else mine.iloc[0]
    tokens = data.token_deltas(ctx.path, ctx.version, row.span_id, row["shard"], row["mode"])
    if tokens.empty:
        st.info("This step kept no per-token deltas (scored by an older `shardscope attribute`, "
                "or by a scorer without token texts). Score it again to see its tokens:\n\n"
                f"```\nshardscope attribute -s {row.suite} --mode {row['mode']}\n```")
        return
    st.caption(f"{row.system} · {row.task_id} · step {step} · shard {row['shard']} "
               f"({row['mode']}): Δ log p {row.delta_logp:.2f} over {len(tokens)} tokens, "
               f"{row.delta_action_logp:.2f} over the action.")
    st.html(token_html(tokens))
    st.altair_chart(charts.token_deltas(tokens), width="stretch")


def _episode_label(rows: pd.DataFrame, episode: str) -> str:
    first = rows[rows.episode_id == episode].iloc[0]
    return f"{first.system} · {first.task_id} · {episode[:8]}"


def token_html(tokens: pd.DataFrame) -> str:
    """The tokens as inline spans, background from blue (negative) to red (positive) by Δ log p,
    each with its value on hover."""
    reach = max(float(tokens.delta.abs().max()), 1e-9)
    spans = []
    for token, delta in zip(tokens.token, tokens.delta, strict=True):
        strength = min(abs(delta) / reach, 1.0)
        rgb = "214,96,77" if delta > 0 else "67,147,195"
        spans.append(f"<span title='Δ log p {delta:+.3f}' style='background:rgba({rgb},"
                     f"{strength:.2f});white-space:pre-wrap'>{html.escape(token)}</span>")
    return ("<div style='font-family:monospace;font-size:0.9rem;line-height:1.7;"
            "border:1px solid #ddd;padding:0.5rem'>" + "".join(spans) + "</div>")


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
