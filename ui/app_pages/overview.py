"""Overview: models x tasks (x scaffolds) by outcome, success rates with error bars, tokens,
cost and time per model, and the progress of running matrices."""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from shardscope.analysis.summaries import model_summary, outcome_matrix, run_outcomes
from shardscope.tracer.queries.filters import EpisodeFilter, facets_of
from shardscope.tracer.queries.runs import StoreSummary
from shardscope.ui import charts, data, widgets


def render() -> None:
    st.title("Overview")
    ctx, summary = widgets.ready_store()
    latest = summary.latest_run.run_id if summary.latest_run else None
    runs = widgets.run_labels(summary)
    picked = st.columns([3, 1])
    with picked[1]:
        all_runs = st.toggle("All runs", key="overview_all_runs",
                             help="Every run in the store, not only the ones picked.")
    with picked[0]:
        chosen = widgets.multiselect("Runs", tuple(runs), "overview_runs", format_func=runs.get,
                                     disabled=all_runs, placeholder="pick runs",
                                     **({} if "overview_runs" in st.session_state
                                        else {"default": [latest] if latest else []}))
    cube = data.cube(ctx, None if all_runs or not chosen else tuple(chosen))
    flt = widgets.filter_bar(facets_of(cube), "overview",
                             fields=("suites", "scaffolds", "models"))
    # An `ablate` run (often the latest) holds only ablation episodes, its baselines reused
    # from earlier runs: hiding ablations by default would show nothing at all.
    only_ablations = bool(len(cube)) and "ablated" in cube and bool(cube["ablated"].astype(bool).all())
    ablations = st.checkbox("Include shard-ablation episodes", key="overview_ablations",
                            value=only_ablations,
                            help="Counterfactual episodes with one shard removed or replaced.")
    if only_ablations and ablations:
        st.caption("The picked runs hold only shard-ablation episodes (their baselines were "
                   "reused from earlier runs): they are shown. Turn on **All runs** to see the "
                   "baselines too.")
    flt = dataclasses.replace(flt, ablations=ablations)
    _running(summary, cube)
    if not flt.mask(cube).any():
        st.info("No episode matches these filters.")
        return
    _headline(cube, flt)
    group = _grouping()
    summary_frame = model_summary(cube, flt, by=group)
    label = " · ".join(group)
    if len(group) > 1:
        summary_frame.insert(0, label, summary_frame[list(group)].astype(str).agg(" · ".join, axis=1))
    _success(summary_frame, label)
    _matrix(cube, flt)
    _resources(summary_frame, label)


def _running(summary: StoreSummary, cube: pd.DataFrame) -> None:
    if not summary.running and not summary.stale:
        return
    st.subheader("Running")
    tallies = run_outcomes(cube).set_index("run_id")
    for run in (*summary.running, *summary.stale):
        counts = tallies.loc[run.run_id].to_dict() if run.run_id in tallies.index else None
        if counts:
            counts.pop("episodes", None)
        widgets.run_progress(run, counts)
        if run.status == "stale":
            st.warning(f"Run {run.label} stopped without ending (its process was killed?). "
                       f"Finish what is missing with `shardscope run --resume {run.run_id}`.",
                       icon=":material/warning:")


def _headline(cube: pd.DataFrame, flt: EpisodeFilter) -> None:
    total = model_summary(cube.assign(all="all"), flt, by=("all",)).iloc[0]
    cells = st.columns(5)
    cells[0].metric("Episodes", f"{total.episodes:,}")
    cells[1].metric("Success rate", widgets.fmt_rate(total.success_rate, total.success_se),
                    help="± one standard error, clustered by task")
    cells[2].metric("Tokens", f"{total.tokens:,}")
    cells[3].metric("Cost", widgets.fmt_cost(total.cost_usd),
                    help=f"{total.priced_episodes:,} of {total.episodes:,} episodes have a price")
    cells[4].metric("Time", widgets.fmt_seconds(total.seconds))


def _grouping() -> tuple[str, ...]:
    by = st.segmented_control("Compare by", ["model", "model · scaffold", "scaffold"],
                              default="model", key="overview_group")
    return {"model · scaffold": ("model", "scaffold"), "scaffold": ("scaffold",)}.get(by or "model",
                                                                                   ("model",))


def _success(frame: pd.DataFrame, label: str) -> None:
    st.subheader("Success rate")
    left, right = st.columns([3, 2])
    with left:
        st.altair_chart(charts.success_rates(frame, label), width="stretch")
    with right:
        st.altair_chart(charts.outcome_bars(frame, label), width="stretch")
    table = frame[[label, "episodes", "tasks", "success_rate", "success_se", "ci_low", "ci_high",
                   "tokens_per_episode", "cost_usd", "seconds_per_episode"]]
    table = widgets.with_dashes(widgets.with_dashes(table, ("ci_low", "ci_high")), ("cost_usd",),
                                percent=False)
    st.dataframe(table, hide_index=True, width="stretch", key="overview_summary", column_config={
        "success_rate": st.column_config.NumberColumn("success", format="percent"),
        "success_se": st.column_config.NumberColumn("SE", format="percent",
                                                    help="clustered by task"),
        "ci_low": st.column_config.TextColumn("95% low"),
        "ci_high": st.column_config.TextColumn("95% high"),
        "tokens_per_episode": st.column_config.NumberColumn("tokens / episode", format="%.0f"),
        "cost_usd": st.column_config.TextColumn("cost $"),
        "seconds_per_episode": st.column_config.NumberColumn("s / episode", format="%.2f"),
    })


HEATMAP_COLOURS = {"success rate": "success_rate", "most frequent outcome": "top_outcome"}


def _matrix(cube: pd.DataFrame, flt: EpisodeFilter) -> None:
    st.subheader("Outcomes: models x tasks")
    matrix = outcome_matrix(cube, flt)
    colour = st.segmented_control("Colour by", list(HEATMAP_COLOURS), default="success rate",
                                  key="overview_heatmap_colour") or "success rate"
    st.caption(f"{matrix['task_id'].nunique():,} tasks · colour: {colour} of the cell; "
               "hover for each outcome's count")
    st.altair_chart(charts.outcome_heatmap(matrix, HEATMAP_COLOURS[colour]), width="stretch")


def _resources(frame: pd.DataFrame, label: str) -> None:
    st.subheader("Tokens, cost and time")
    cells = st.columns(3)
    with cells[0]:
        st.altair_chart(charts.per_group_bars(frame, label, "tokens_per_episode",
                                              "tokens per episode"), width="stretch")
    with cells[1]:
        if frame["cost_usd"].notna().any():
            st.altair_chart(charts.per_group_bars(frame, label, "cost_usd", "cost (USD)", ",.4f"),
                            width="stretch")
        else:
            st.caption("No cost recorded: none of these models has a price in the catalog.")
    with cells[2]:
        st.altair_chart(charts.per_group_bars(frame, label, "seconds_per_episode",
                                              "seconds per episode", ",.2f"), width="stretch")


if __name__ == "__main__":
    render()
