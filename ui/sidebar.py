"""The sidebar: which store, its counts, the latest run's progress, and live refresh.

Live refresh is a fragment that reruns every few seconds and only compares the store's
version token (two ``stat`` calls, no connection): when a writer has committed since the
page was drawn, it reruns the app, whose cached loaders then miss and read the new data.
"""

from __future__ import annotations

import time

import streamlit as st

from shardscope.tracer.queries.runs import StoreSummary
from shardscope.tracer.queries.status import store_version
from shardscope.ui import data, widgets

REFRESH_SECONDS = 2.0
_RENDERED = "_shardscope_rendered_version"


def render() -> None:
    ctx = data.current()
    st.session_state[_RENDERED] = ctx.version
    summary = data.summary(ctx.path, ctx.version)
    with st.sidebar:
        st.markdown("### shardscope")
        st.caption("store")
        st.code(ctx.path, language=None, wrap_lines=True)
        _counts(summary)
        if summary.latest_run is not None:
            st.caption("latest run")
            widgets.run_progress(summary.latest_run)
        st.toggle("Live refresh", value=True, key="live_refresh",
                  help=f"Check the store every {REFRESH_SECONDS:g} s and redraw when it changed.")
        if st.session_state.get("live_refresh", True):
            _watch(ctx.path)


def _counts(summary: StoreSummary) -> None:
    if summary.state == "missing":
        st.warning("no store at this path yet")
        return
    left, right = st.columns(2)
    left.metric("episodes", f"{summary.episodes:,}")
    right.metric("runs", f"{len(summary.runs):,}")
    st.caption(f"{summary.spans:,} spans")


@st.fragment(run_every=REFRESH_SECONDS)
def _watch(path: str) -> None:
    if store_version(path) != st.session_state.get(_RENDERED):
        st.rerun()
    st.caption(f"live · checked {time.strftime('%H:%M:%S')}")
