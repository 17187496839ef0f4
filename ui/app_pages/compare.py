"""Compare: two to four model · scaffold systems on the same tasks. Metric deltas with
intervals (paired by task), where trajectories part (aligned step by step, first divergence
highlighted), tool use, and behaviour clusters of the final answers."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shardscope.analysis import trajectory
from shardscope.analysis.compare import Comparison, NothingToCompare, PairDivergence
from shardscope.analysis.summaries import informative_pair
from shardscope.tracer.queries.comparison import Selection
from shardscope.ui import charts, data, navigation, widgets

MAX_SYSTEMS = 4
OPS = {"match": "same", "substitute": "different", "delete": "only left", "insert": "only right"}
SIMILAR = {"tool": "same tool, other arguments", "final": "different answer"}


def render() -> None:
    st.title("Compare")
    ctx, _ = widgets.ready_store()
    available = data.systems(ctx.path, ctx.version)
    available = available[available.episodes > 0]
    suites = sorted(available.suite.dropna().unique())
    if not suites:
        st.info("No finished episode yet.")
        return
    cells = st.columns([1, 3, 1])
    suite = cells[0].selectbox("Suite", suites, key="compare_suite")
    here = available[available.suite == suite]
    offered = tuple(here.system)
    default = _default_systems(here) if "compare_systems" not in st.session_state else None
    with cells[1]:
        chosen = widgets.multiselect(
            "Systems (model · scaffold)", offered, "compare_systems", max_selections=MAX_SYSTEMS,
            placeholder="pick two to four", **({"default": default} if default else {}))
    metric = cells[2].segmented_control("Metric", ["success", "score"], default="success",
                                        key="compare_metric") or "success"
    if len(chosen) < 2:
        st.info("Pick at least two model · scaffold systems of this suite to compare.")
        return
    try:
        result = data.comparison(ctx.path, ctx.version, Selection(suites=(suite,)), tuple(chosen),
                                 metric)
    except NothingToCompare as exc:
        st.warning(str(exc))
        return
    _deltas(result)
    _trajectories(result)
    _tools(result)
    _clusters(ctx, suite, tuple(chosen))


def _default_systems(here: pd.DataFrame) -> list[str]:
    """The most informative pair: two models under one scaffold whose outcomes differ most."""
    return informative_pair(here)


def _deltas(result: Comparison) -> None:
    st.subheader("Outcomes and paired differences")
    for note in result.notes:
        st.caption(note)
    # One above the other: side by side, whole "model · scaffold" labels left no room to plot.
    st.altair_chart(charts.success_rates(result.estimates, "system"), width="stretch")
    st.altair_chart(charts.differences(result.comparisons, percent=result.metric == "success"),
                    width="stretch")
    percent = st.column_config.NumberColumn(format="percent")
    pairs = widgets.with_dashes(result.comparisons.drop(columns=["metric"]), ("ci_low", "ci_high"),
                                percent=result.metric == "success")
    st.dataframe(pairs, hide_index=True, width="stretch",
                 key="compare_pairs", column_config={
                     "diff": st.column_config.NumberColumn("a − b", format="%.3f"),
                     "ci_low": st.column_config.TextColumn("95% low"),
                     "ci_high": st.column_config.TextColumn("95% high"),
                     "p_value": st.column_config.NumberColumn("p", format="%.4f"),
                     "p_adjusted": st.column_config.NumberColumn(f"p ({result.correction})",
                                                                 format="%.4f"),
                     "mde": st.column_config.NumberColumn("MDE", format="%.3f", help=(
                         "the smallest difference these tasks detect with 80% power")),
                     "mean_a": percent, "mean_b": percent, "se": st.column_config.NumberColumn(
                         "SE", format="%.3f")})


def _trajectories(result: Comparison) -> None:
    st.subheader("Where trajectories part")
    summary = pd.DataFrame([{"a": d.a, "b": d.b, **{k: v for k, v in d.summary.items()
                                                    if k != "top_divergences"}}
                            for d in result.divergences])
    st.dataframe(summary, hide_index=True, width="stretch", key="compare_divergence",
                 column_config={"rejoin_rate": st.column_config.NumberColumn("rejoin", format="percent"),
                                "mean_distance": st.column_config.NumberColumn("distance", format="%.2f")})
    reference, *others = result.systems
    pairs = {o: next(d for d in result.divergences if {d.a, d.b} == {reference, o}) for o in others}
    table = next(iter(pairs.values())).table
    if table.empty:
        st.info("These systems share no task and seed: nothing to align.")
        return
    cells = st.columns([3, 1])
    tasks = sorted(table.task_id.unique())
    task = cells[0].selectbox("Task", tasks, key="compare_task",
                              format_func=lambda t: _task_label(t, table))
    seeds = sorted(table[table.task_id == task].seed.unique())
    seed = cells[1].selectbox("Seed", seeds, key="compare_seed")
    for other, pair in pairs.items():
        _aligned(result, pair, task, seed, reference, other)


def _task_label(task: str, table: pd.DataFrame) -> str:
    rows = table[table.task_id == task]
    parted = rows[rows.diverged]
    if parted.empty:
        return f"{task} · identical"
    return f"{task} · parts at step {int(parted.position.min())}"


def _aligned(result: Comparison, pair: PairDivergence, task: str, seed: object, reference: str,
             other: str) -> None:
    row = pair.table[(pair.table.task_id == task) & (pair.table.seed == seed)]
    if row.empty:
        st.caption(f"{other}: no episode of {task} with seed {seed}")
        return
    row = row.iloc[0]
    ids = {pair.a: row.episode_id_a, pair.b: row.episode_id_b}
    left, right = result.paths.get(ids[reference], []), result.paths.get(ids[other], [])
    div = trajectory.first_divergence(left, right)
    st.markdown(f"**{reference}** vs **{other}** · outcomes {widgets.outcome_badge(_outcome(row, pair, reference))}"
                f" vs {widgets.outcome_badge(_outcome(row, pair, other))}")
    if div.position is None:
        st.success("Identical trajectories.", icon=":material/check:")
    else:
        st.warning(f"First divergence at step {div.position}: {reference} "
                   f"{div.action_a.label if div.action_a else 'had ended'} · {other} "
                   f"{div.action_b.label if div.action_b else 'had ended'}"
                   + (" · they rejoin later" if div.rejoined else ""), icon=":material/call_split:")
    frame = pd.DataFrame([{
        "step": _step(col.a) if col.a else _step(col.b),
        reference: col.a.label if col.a else "",
        other: col.b.label if col.b else "",
        "alignment": _op_label(col),
        "first divergence": i == div.position,
    } for i, col in enumerate(div.alignment)])
    st.dataframe(frame.style.apply(_highlight, axis=1), hide_index=True, width="stretch",
                 key=f"compare_aligned_{other}")
    links = st.columns(2)
    for cell, system in zip(links, (reference, other), strict=True):
        cell.page_link(navigation.TRACE_PAGE, label=f"open {system}'s trace",
                       icon=":material/account_tree:", query_params={"episode": ids[system]})


def _op_label(col: trajectory.Aligned) -> str:
    if col.op == "similar" and col.a is not None:
        return SIMILAR.get(col.a.kind, f"both {col.a.kind}, differently")
    return OPS[col.op]


def _outcome(row: pd.Series, pair: PairDivergence, system: str) -> str:
    outcome: str = row.outcome_a if system == pair.a else row.outcome_b
    return outcome


def _step(action: trajectory.Action | None) -> int | None:
    return action.step_index if action is not None and action.step_index >= 0 else None


def _highlight(row: pd.Series) -> list[str]:
    if row["first divergence"]:
        return ["background-color: #ffe0b2"] * len(row)
    if row["alignment"] != "same":
        return ["background-color: #fff8e1"] * len(row)
    return [""] * len(row)


def _tools(result: Comparison) -> None:
    st.subheader("Tool use")
    st.dataframe(result.behaviour, hide_index=True, width="stretch", key="compare_behaviour",
                 column_config={"loop_share": st.column_config.NumberColumn(
                     "episodes with a repeated-call loop", format="percent")})
    if not result.tool_profile.empty:
        st.altair_chart(charts.tool_shares(result.tool_profile), width="stretch")


def _clusters(ctx: data.Context, suite: str, systems: tuple[str, ...]) -> None:
    st.subheader("Behaviour clusters of the final answers")
    method = st.segmented_control("Embedding", ["tfidf", "minilm"], default="tfidf",
                                  key="compare_embedding",
                                  help="minilm: all-MiniLM-L6-v2 (loads once, a few seconds)")
    if not st.toggle("Cluster the answers", key="compare_cluster_on"):
        return
    found = data.clusters(ctx.path, ctx.version, Selection(suites=(suite,)), systems, method or "tfidf")
    if found.summary.empty:
        st.info("No final answer to cluster.")
        return
    st.caption(f"{found.method}, k = {found.k}: share of each system's answers per cluster")
    occupancy = found.occupancy.copy()
    occupancy.columns = [f"cluster {c}" for c in occupancy.columns]
    st.dataframe(occupancy, width="stretch", key="compare_occupancy")
    shown = found.summary.assign(representatives=found.summary.representatives.map(" | ".join))
    st.dataframe(shown, hide_index=True, width="stretch", key="compare_clusters")


if __name__ == "__main__":
    render()
