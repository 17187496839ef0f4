"""Altair charts of the app (pure: frames in, charts out)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from shardscope.analysis.stats import system_column
from shardscope.tracer.queries.filters import OUTCOMES

OUTCOME_COLORS = {
    "success": "#2e7d32", "failure": "#c62828", "protocol_error": "#ef6c00",
    "budget_exhausted": "#f9a825", "error": "#6a1b9a", "unknown": "#9e9e9e",
}
SPAN_COLORS = {
    "episode": "#455a64", "step": "#90a4ae", "llm_call": "#1e88e5", "tool_call": "#43a047",
    "run": "#8d6e63", "run_start": "#8d6e63", "span": "#bdbdbd",
}


# System labels ("qwen2.5-coder-0.5b-instruct · react-text") are longer than Vega-Lite's default
# 180 px label limit: cut, two scaffolds of one model could not be told apart. 0: no limit.
FULL_LABELS = alt.Axis(labelLimit=0)


def _rows_height(rows: int, per_row: int = 34) -> int:
    # Streamlit fits the whole chart (axes and title included) into the height.
    return 70 + per_row * max(rows, 1)


def _scale(colors: dict[str, str], present: list[str]) -> alt.Scale:
    domain = [k for k in colors if k in present] + [k for k in present if k not in colors]
    return alt.Scale(domain=domain, range=[colors.get(k, "#757575") for k in domain])


def success_rates(summary: pd.DataFrame, group: str) -> alt.LayerChart:
    """Success rate per group with its 95% interval (clustered by task) as error bars."""
    base = alt.Chart(summary).encode(y=alt.Y(f"{group}:N", title=None, sort=None, axis=FULL_LABELS))
    bars = base.mark_rule(strokeWidth=2, color="#455a64").encode(
        x=alt.X("ci_low:Q", title="success rate (95% interval, clustered by task)",
                # an interval may pass 0 or 1 (stats.estimate does not bound it): drawn to the edge
                scale=alt.Scale(domain=[0, 1], clamp=True), axis=alt.Axis(format="%")),
        x2="ci_high:Q",
    )
    points = base.mark_point(filled=True, size=90, color="#1e88e5").encode(
        x="success_rate:Q",
        tooltip=[alt.Tooltip(f"{group}:N"), alt.Tooltip("episodes:Q"), alt.Tooltip("tasks:Q"),
                 alt.Tooltip("success_rate:Q", format=".1%"),
                 alt.Tooltip("success_se:Q", title="SE", format=".1%"),
                 alt.Tooltip("ci_low:Q", format=".1%"), alt.Tooltip("ci_high:Q", format=".1%")],
    )
    layered: alt.LayerChart = (bars + points).properties(height=_rows_height(len(summary)))
    return layered


def outcome_heatmap(matrix: pd.DataFrame, colour_by: str = "success_rate") -> alt.Chart:
    """Rows: model (· scaffold); columns: tasks; colour: the cell's success rate, or with
    ``colour_by="top_outcome"`` its most frequent outcome; tooltip: each outcome's count."""
    data = matrix.copy()
    several = data["scaffold"].nunique() > 1
    data["row"] = data["model"] + (" · " + data["scaffold"] if several else "")
    data["task"] = data["suite"] + "/" + data["task_id"]
    outcome_columns = [o for o in (*OUTCOMES, "unknown") if o in data]
    colours = {
        "success_rate": alt.Color("success_rate:Q", title="success",
                                  scale=alt.Scale(domain=[0, 1], scheme="redyellowgreen")),
        "top_outcome": alt.Color("top_outcome:N", title="most common",
                                 scale=_scale(OUTCOME_COLORS, list(data["top_outcome"].unique()))),
    }
    if colour_by not in colours:
        raise ValueError(f"cannot colour the heatmap by {colour_by!r}; choose from "
                         f"{', '.join(colours)}")
    chart: alt.Chart = alt.Chart(data).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("task:N", title="task", sort=None, axis=alt.Axis(labelLimit=120)),
        y=alt.Y("row:N", title=None, sort=None, axis=FULL_LABELS),
        color=colours[colour_by],
        tooltip=[alt.Tooltip("row:N", title="model"), alt.Tooltip("task:N"),
                 alt.Tooltip("episodes:Q"), alt.Tooltip("success_rate:Q", format=".0%"),
                 alt.Tooltip("top_outcome:N", title="most common")]
        + [alt.Tooltip(f"{o}:Q") for o in outcome_columns],
    ).properties(height=_rows_height(data["row"].nunique(), 28) + 60)
    return chart


def outcome_bars(summary: pd.DataFrame, group: str) -> alt.Chart:
    """Stacked share of each outcome per group."""
    present = [o for o in OUTCOMES if o in summary and summary[o].sum() > 0]
    long = summary[[group, *present]].melt(id_vars=[group], var_name="outcome",
                                           value_name="episodes")
    chart: alt.Chart = alt.Chart(long).mark_bar().encode(
        y=alt.Y(f"{group}:N", title=None, sort=None, axis=FULL_LABELS),
        x=alt.X("episodes:Q", stack="normalize", title="share of episodes",
                axis=alt.Axis(format="%")),
        color=alt.Color("outcome:N", scale=_scale(OUTCOME_COLORS, present)),
        order=alt.Order("outcome_rank:Q"),
        tooltip=[f"{group}:N", "outcome:N", "episodes:Q"],
    ).transform_calculate(
        outcome_rank="indexof(" + str(list(OUTCOMES)) + ", datum.outcome)"
    ).properties(height=_rows_height(len(summary)))
    return chart


def per_group_bars(summary: pd.DataFrame, group: str, column: str, title: str,
                   fmt: str = ",.0f") -> alt.Chart:
    data = summary[[group, column]].dropna()
    chart: alt.Chart = alt.Chart(data).mark_bar(color="#5c6bc0").encode(
        y=alt.Y(f"{group}:N", title=None, sort=None, axis=FULL_LABELS),
        x=alt.X(f"{column}:Q", title=title),
        tooltip=[f"{group}:N", alt.Tooltip(f"{column}:Q", format=fmt)],
    ).properties(height=_rows_height(len(data)))
    return chart


def waterfall(spans: pd.DataFrame) -> alt.Chart:
    """One bar per span from its start to its end (ms since the episode began)."""
    data = spans[["label", "name", "span_type", "offset_ms", "end_offset_ms", "duration_ms",
                  "status_code"]].copy()
    data["order"] = range(len(data))
    data["row"] = [f"{i:04d} {label}" for i, label in enumerate(data["label"])]
    present = list(dict.fromkeys(data["span_type"]))
    chart: alt.Chart = alt.Chart(data).mark_bar(minBandSize=2).encode(
        y=alt.Y("row:N", sort=None, title=None,
                axis=alt.Axis(labelExpr="substring(datum.value, 5)", labelLimit=260)),
        x=alt.X("offset_ms:Q", title="ms since the episode started"),
        x2="end_offset_ms:Q",
        color=alt.Color("span_type:N", title="span type", scale=_scale(SPAN_COLORS, present)),
        stroke=alt.condition("datum.status_code == 'ERROR'", alt.value("#d32f2f"), alt.value(None)),
        tooltip=["name:N", "span_type:N", alt.Tooltip("offset_ms:Q", format=",.2f"),
                 alt.Tooltip("duration_ms:Q", format=",.2f"), "status_code:N"],
    ).properties(height=_rows_height(len(data), 22))
    return chart


def token_timeline(tokens: pd.DataFrame) -> alt.Chart:
    """Each token at its arrival time; colour (and height) by logprob where recorded."""
    data = tokens.copy()
    has_logprobs = data["logprob"].notna().any()
    y = alt.Y("logprob:Q", title="logprob") if has_logprobs else alt.Y("token_index:Q", title="token #")
    color = (alt.Color("logprob:Q", scale=alt.Scale(scheme="redyellowgreen", domainMax=0))
             if has_logprobs else alt.value("#1e88e5"))
    chart: alt.Chart = alt.Chart(data).mark_circle(size=70).encode(
        x=alt.X("offset_ms:Q", title="ms since the request was sent"),
        y=y, color=color,
        tooltip=["token_index:Q", "token:N", alt.Tooltip("offset_ms:Q", format=",.1f"),
                 alt.Tooltip("logprob:Q", format=".3f"), alt.Tooltip("probability:Q", format=".1%")],
    ).properties(height=220)
    return chart


def result_chart(frame: pd.DataFrame, x: str, y: str, kind: str) -> alt.Chart:
    """A chart of SQL results: bar, line or point of y over x."""
    mark = {"bar": alt.Chart(frame).mark_bar(), "line": alt.Chart(frame).mark_line(point=True),
            "point": alt.Chart(frame).mark_point()}[kind]
    x_type = "Q" if pd.api.types.is_numeric_dtype(frame[x]) and kind != "bar" else (
        "T" if pd.api.types.is_datetime64_any_dtype(frame[x]) else "N")
    chart: alt.Chart = mark.encode(x=alt.X(f"{x}:{x_type}", sort=None), y=alt.Y(f"{y}:Q"),
                                   tooltip=list(frame.columns[:8])).properties(height=320)
    return chart


def differences(comparisons: pd.DataFrame, percent: bool = True) -> alt.LayerChart:
    """Paired difference (a − b) per pair of systems with its 95% interval; zero marked."""
    data = comparisons.assign(pair=comparisons["a"] + " − " + comparisons["b"],
                              verdict=comparisons["significant"].map(
                                  {True: "significant", False: "not significant"}))
    fmt = "%" if percent else ".2f"
    # "a − b" of two long system names: one per line, whole.
    base = alt.Chart(data).encode(y=alt.Y("pair:N", title=None, sort=None, axis=alt.Axis(
        labelLimit=0, labelExpr="split(datum.label, ' − ')")))
    rule = base.mark_rule(strokeWidth=2, color="#455a64").encode(
        x=alt.X("ci_low:Q", title="paired difference (95% interval)", axis=alt.Axis(format=fmt)),
        x2="ci_high:Q")
    points = base.mark_point(filled=True, size=90).encode(
        x="diff:Q",
        color=alt.Color("verdict:N", title=None, scale=alt.Scale(
            domain=["significant", "not significant"], range=["#c62828", "#1e88e5"]),
            legend=alt.Legend(orient="bottom")),  # beside long pair labels it was cut off
        tooltip=["pair:N", alt.Tooltip("tasks:Q"), alt.Tooltip("diff:Q", format=".3f"),
                 alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"),
                 alt.Tooltip("p_value:Q", format=".4f"), alt.Tooltip("p_adjusted:Q", format=".4f"),
                 alt.Tooltip("mde:Q", title="MDE", format=".3f"), "method:N"])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 3]).encode(x="x:Q")
    layered: alt.LayerChart = (rule + points + zero).properties(height=_rows_height(len(data), 44) + 30)
    return layered


def tool_shares(profile: pd.DataFrame) -> alt.Chart:
    """Share of each system's tool calls per tool, with the tool's error rate on hover; the
    legend names every tool called."""
    tools = sorted(profile["tool_name"].dropna().astype(str).unique())
    chart: alt.Chart = alt.Chart(profile).mark_bar().encode(
        y=alt.Y("system:N", title=None, sort=None, axis=FULL_LABELS),
        x=alt.X("calls:Q", stack="normalize", title="share of tool calls", axis=alt.Axis(format="%")),
        color=alt.Color("tool_name:N", title="tool", scale=alt.Scale(domain=tools),
                        legend=alt.Legend(orient="bottom", columns=4, symbolLimit=0, labelLimit=0)),
        tooltip=["system:N", "tool_name:N", "calls:Q", alt.Tooltip("share:Q", format=".0%"),
                 alt.Tooltip("error_rate:Q", title="error rate", format=".0%")],
    # Room for the legend below the bars: with two systems a legend of four tools was cut.
    ).properties(height=_rows_height(profile["system"].nunique()) + 30 + 20 * ((len(tools) + 3) // 4))
    return chart


# Each value's legend title and label format. Without a format, a legend whose values are
# all one number (every score drop 0, as on most HumanEval cells) read "0.000000": Vega's
# tick format finds no precision in a zero-width domain and falls back to d3-format's 6.
INFLUENCE_LEGENDS = {"success_drop": ("success drop", ".0%"), "score_drop": ("score drop", ".2~f"),
                     "trajectory_change": ("trajectory change", ".2~f")}


def influence_map(influence: pd.DataFrame, value: str = "success_drop") -> alt.Chart:
    """Shards (rows) x systems (columns), coloured by how much ablating the shard hurt; one
    row of ``influence`` per cell (one ablation mode)."""
    data = influence.assign(row=influence["task_id"] + " · " + influence["shard"],
                            column=system_column(influence))
    title, legend = INFLUENCE_LEGENDS[value]
    chart: alt.Chart = alt.Chart(data).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("column:N", title=None, axis=alt.Axis(labelAngle=-20, labelLimit=0)),
        y=alt.Y("row:N", title="task · shard", sort=None),
        color=alt.Color(f"{value}:Q", title=title, legend=alt.Legend(format=legend),
                        scale=alt.Scale(scheme="redblue", reverse=True, domainMid=0)),
        tooltip=["row:N", "column:N", "n:Q",
                 alt.Tooltip("success_drop:Q", format=".0%"),
                 alt.Tooltip("ci_low:Q", title="95% low", format=".0%"),
                 alt.Tooltip("ci_high:Q", title="95% high", format=".0%"),
                 alt.Tooltip("score_drop:Q", format=".2f"),
                 alt.Tooltip("trajectory_change:Q", format=".2f")],
    ).properties(height=_rows_height(data["row"].nunique(), 26) + 40)
    return chart


def likelihood_map(cells: pd.DataFrame) -> alt.LayerChart:
    """Shards (rows: ``shard``, e.g. "task · shard") x ``system`` (columns), coloured by Δ log p of the recorded action
    when the shard is ablated, each cell labelled with its mean (and 95% interval when the
    shard has more than one episode)."""
    data = cells.assign(row=cells["shard"],
                        label=[f"{m:.1f}" if pd.isna(lo) else f"{m:.1f} [{lo:.1f}, {hi:.1f}]"
                               for m, lo, hi in zip(cells["mean"], cells.ci_low, cells.ci_high,
                                                    strict=True)])
    base = alt.Chart(data).encode(
        x=alt.X("system:N", title=None, axis=alt.Axis(labelAngle=-20, labelLimit=0)),
        y=alt.Y("row:N", title="task · shard", sort=None, axis=alt.Axis(labelLimit=0)))
    # symmetric around 0, so a small negative delta is pale, not as dark as the largest one
    reach = float(data["mean"].abs().max()) if len(data) else 1.0
    rect = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color("mean:Q", title="Δ log p (nats)", legend=alt.Legend(format=".2~f"),
                        scale=alt.Scale(scheme="redblue", reverse=True,
                                        domain=[-reach, reach])),
        tooltip=["row:N", "system:N", "episodes:Q", alt.Tooltip("mean:Q", format=".2f"),
                 alt.Tooltip("ci_low:Q", title="95% low", format=".2f"),
                 alt.Tooltip("ci_high:Q", title="95% high", format=".2f")])
    text = base.mark_text(fontSize=11).encode(text="label:N")
    layered: alt.LayerChart = (rect + text).properties(
        height=_rows_height(data["row"].nunique(), 30) + 40)
    return layered


FOLLOW_COLOURS = {"follow": "#d6604d", "keep": "#4393c3", "other": "#bababa"}


def follow_bars(rates: pd.DataFrame) -> alt.LayerChart:
    """Per system (``model``): shares of answers that follow the replaced shard, keep the
    original or are something else, with the follow rate's 95% interval drawn over the
    follow segment (which starts at 0)."""
    order = {k: i for i, k in enumerate(FOLLOW_COLOURS)}
    long = rates.melt(id_vars=["model", "episodes"], value_vars=list(FOLLOW_COLOURS),
                      var_name="answer", value_name="count")
    long = long.assign(share=long["count"] / long.episodes, rank=long.answer.map(order))
    # a third of the page: long "model · scaffold" labels are cut (hover shows them whole)
    y = alt.Y("model:N", title=None, axis=alt.Axis(labelLimit=150))
    bars = alt.Chart(long).mark_bar().encode(
        y=y, x=alt.X("share:Q", title="share of answers", stack="zero",
                     axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("answer:N", scale=alt.Scale(domain=list(FOLLOW_COLOURS),
                                                    range=list(FOLLOW_COLOURS.values())),
                        legend=alt.Legend(orient="top", title=None)),
        order=alt.Order("rank:Q"),
        tooltip=["model:N", "answer:N", "count:Q", alt.Tooltip("share:Q", format=".0%")])
    interval = alt.Chart(rates).mark_rule(color="black", strokeWidth=2).encode(
        y=y, x="follow_low:Q", x2="follow_high:Q",
        tooltip=["model:N", alt.Tooltip("follow_rate:Q", title="follow rate", format=".0%"),
                 alt.Tooltip("follow_low:Q", title="95% low", format=".0%"),
                 alt.Tooltip("follow_high:Q", title="95% high", format=".0%")])
    point = alt.Chart(rates).mark_tick(color="black", thickness=2).encode(y=y, x="follow_rate:Q")
    layered: alt.LayerChart = (bars + interval + point).properties(
        height=_rows_height(len(rates), 40) + 40)
    return layered


def token_deltas(tokens: pd.DataFrame) -> alt.Chart:
    """One step's output tokens in order (``index``, ``token``), coloured by ``delta`` (the
    token's log p with the shard minus without it; positive: the shard supported it)."""
    reach = float(tokens.delta.abs().max()) if len(tokens) else 1.0
    chart: alt.Chart = alt.Chart(tokens).mark_bar().encode(
        x=alt.X("index:O", title="output token", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("delta:Q", title="Δ log p (nats)"),
        color=alt.Color("delta:Q", scale=alt.Scale(scheme="redblue", reverse=True,
                                                   domain=[-reach, reach]), legend=None),
        tooltip=["index:Q", "token:N", alt.Tooltip("delta:Q", format=".3f")]).properties(height=160)
    return chart
