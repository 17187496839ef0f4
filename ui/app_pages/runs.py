"""Runs: every episode in a filterable, sortable table; selecting a row opens its trace."""

from __future__ import annotations

import dataclasses

import streamlit as st

from shardscope.tracer.queries.filters import EpisodeFilter
from shardscope.ui import data, navigation, widgets

SORT_LABELS = {"started_at": "start time", "duration_s": "duration", "tokens": "tokens",
               "steps": "steps", "cost_usd": "cost", "score": "score", "outcome": "outcome",
               "model": "model", "task_id": "task", "suite": "suite", "scaffold": "scaffold",
               "seed": "seed"}
TABLE_KEY = "runs_table"
ROW_LIMITS = [100, 500, 2000]
ORDER = ("suite", "task_id", "scaffold", "model", "seed", "outcome", "score", "steps", "llm_calls",
         "tool_calls", "tokens", "cost_usd", "duration_s", "started_at", "error", "ablation_shard",
         "ablation_mode", "run_id", "episode_id")
COLUMNS = {
    "suite": st.column_config.TextColumn("suite"),
    "task_id": st.column_config.TextColumn("task"),
    "seed": st.column_config.NumberColumn("seed", format="%d"),
    "score": st.column_config.NumberColumn("score", format="%.2f"),
    "tokens": st.column_config.NumberColumn("tokens", format="%d"),
    "cost_usd": st.column_config.NumberColumn("cost $", format="%.4f"),
    "duration_s": st.column_config.NumberColumn("time (s)", format="%.2f"),
    "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
    "episode_id": st.column_config.TextColumn("episode"),
}


FIELDS = ("run_ids", "suites", "scaffolds", "models", "outcomes")


def render() -> None:
    st.title("Runs")
    ctx, summary = widgets.ready_store()
    # The table and the filters' values come in one read, so the widgets' current values
    # (from the session) decide the query before the widgets are drawn.
    asked = _options(widgets.filter_from_state("runs", FIELDS))
    page = data.episodes(ctx.path, ctx.version, *asked)
    assert page.facets is not None
    flt = widgets.filter_bar(page.facets, "runs", runs=widgets.run_labels(summary), fields=FIELDS)
    cells = st.columns([3, 2, 1, 1])
    cells[0].text_input("Search", key="runs_search",
                        placeholder="task id, episode id, answer or error text")
    cells[1].selectbox("Sort by", list(SORT_LABELS), format_func=lambda s: SORT_LABELS[s],
                       key="runs_sort")
    cells[2].toggle("Descending", value=True, key="runs_descending")
    cells[3].selectbox("Rows", ROW_LIMITS, index=1, key="runs_limit")
    if _options(flt) != asked:  # a filter value vanished from the store: ask again
        st.rerun()
    if page.total == 0:
        st.info("No episode matches these filters.")
        return
    shown = len(page.rows)
    st.caption(f"{page.total:,} episodes match · showing {shown:,}"
               + (" (narrow the filters or raise Rows to see more)" if shown < page.total else "")
               + " · select a row to open its trace")
    event = st.dataframe(page.rows, hide_index=True, width="stretch", key=TABLE_KEY,
                         on_select="rerun", selection_mode="single-row", column_config=COLUMNS,
                         column_order=ORDER)
    rows = event.selection.rows if event is not None else []
    if rows:
        episode_id = str(page.rows["episode_id"].iloc[rows[0]])
        st.switch_page(navigation.TRACE_PAGE, query_params={"episode": episode_id})
    st.download_button("Download these rows as CSV", page.rows.to_csv(index=False).encode(),
                       file_name="episodes.csv", mime="text/csv", icon=":material/download:")


def _options(flt: EpisodeFilter) -> tuple[EpisodeFilter, str, bool, int]:
    state = st.session_state
    search = state.get("runs_search", "")
    return (dataclasses.replace(flt, search=search),
            state.get("runs_sort", "started_at"), state.get("runs_descending", True),
            state.get("runs_limit", ROW_LIMITS[1]))


if __name__ == "__main__":
    render()
