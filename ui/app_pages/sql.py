"""SQL console: the views with their columns, example queries that answer comparison
questions, results as a table and a chart, CSV download. Read-only and sandboxed: it runs
through ``shardscope.tracer.queries.user_sql.run_sql``, which cannot change the store or touch
other files, in a worker process that no query can bring down with the app."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from shardscope.config.errors import StoreError
from shardscope.tracer.queries.runs import StoreSummary
from shardscope.tracer.queries.user_sql import EXAMPLE_QUERIES
from shardscope.ui import charts, data, widgets

EXAMPLES = {q.title: q.sql.strip() for q in EXAMPLE_QUERIES}
SQL_KEY = "sql_text"
SUBMITTED = "sql_submitted"  # (sql, max_rows, store version when Run was pressed, time)
FAILED = "sql_failed"  # (the submitted tuple that failed, its message)


def render() -> None:
    st.title("SQL console")
    ctx, _summary = _store()
    left, right = st.columns([1, 2], gap="large")
    with left:
        _schema(ctx)
    with right:
        _editor(ctx)
        _results(ctx)


def _store() -> tuple[data.Context, StoreSummary]:
    ctx = data.current()
    summary = data.summary(ctx.path, ctx.version)
    if summary.state == "missing":  # an empty store still has its views to browse and query
        return widgets.ready_store()
    return ctx, summary


def _schema(ctx: data.Context) -> None:
    st.subheader("Views")
    st.caption("Start with the views; `spans` and `span_events` keep everything raw "
               "(attributes as JSON: `attributes->>'$.\"gen_ai.request.model\"'`).")
    for relation in data.schema(ctx.path, ctx.version):
        with st.expander(f"**{relation.name}** ({relation.kind})"):
            st.caption(relation.description)
            st.dataframe(pd.DataFrame([(c.name, c.type, c.description or "")
                                       for c in relation.columns],
                                      columns=["column", "type", "description"]),
                         hide_index=True, width="stretch")


def _use_example() -> None:
    st.session_state[SQL_KEY] = EXAMPLES[st.session_state["sql_example"]]


def _editor(ctx: data.Context) -> None:
    st.session_state.setdefault(SQL_KEY, next(iter(EXAMPLES.values())))
    st.selectbox("Example queries", list(EXAMPLES), key="sql_example", on_change=_use_example,
                 index=None, placeholder="pick a question to start from")
    st.text_area("SQL (read-only)", key=SQL_KEY, height=220)
    cells = st.columns([1, 1, 3])
    max_rows = cells[1].number_input("Max rows", 1, 100_000, 10_000, step=1000, key="sql_max_rows")
    if cells[0].button("Run", type="primary", icon=":material/play_arrow:", key="sql_run"):
        st.session_state[SUBMITTED] = (st.session_state[SQL_KEY], int(max_rows), ctx.version,
                                       time.strftime("%H:%M:%S"))


def _results(ctx: data.Context) -> None:
    submitted = st.session_state.get(SUBMITTED)
    if submitted is None:
        st.info("Pick an example or write a query, then press Run.")
        return
    sql, max_rows, version, at = submitted
    failed = st.session_state.get(FAILED)
    if failed is not None and failed[0] == submitted:
        # a failed query is not cached: without this every rerun (any click) would run it
        # again, up to its time limit, or crash its worker again
        st.error(failed[1], icon=":material/error:")
        return
    try:
        frame, truncated = data.sql(ctx.path, version, sql, max_rows)
    except StoreError as exc:  # QueryError, or the store busy or gone since the page loaded
        st.session_state[FAILED] = (submitted, f"Query failed: {exc}")
        st.error(f"Query failed: {exc}", icon=":material/error:")
        return
    note = f"{len(frame):,} rows" + (f" (stopped at {max_rows:,})" if truncated else "")
    note += f" · as of {at}"
    if version != ctx.version:
        note += " · the store has changed since: Run again to refresh"
    st.caption(note)
    st.dataframe(frame, hide_index=True, width="stretch", key="sql_result")
    st.download_button("Download CSV", frame.to_csv(index=False).encode(), file_name="query.csv",
                       mime="text/csv", icon=":material/download:", key="sql_csv")
    _chart(frame)


def _chart(frame: pd.DataFrame) -> None:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    if frame.empty or not numeric:
        return
    others = [c for c in frame.columns if c not in numeric] or list(frame.columns)
    cells = st.columns(3)
    x = cells[0].selectbox("x", list(frame.columns), index=list(frame.columns).index(others[0]),
                           key="sql_chart_x")
    y = cells[1].selectbox("y", numeric, index=0 if numeric[0] != x or len(numeric) == 1 else 1,
                           key="sql_chart_y")
    kind = cells[2].segmented_control("chart", ["bar", "line", "point"], default="bar",
                                      key="sql_chart_kind") or "bar"
    st.altair_chart(charts.result_chart(frame.head(5_000), x, y, kind), width="stretch")


if __name__ == "__main__":
    render()
