"""shardscope's Streamlit app: ``shardscope ui [--db PATH]``, or
``streamlit run ui/app.py -- --db PATH``. The store path may also come from SHARDSCOPE_DB."""

from __future__ import annotations

import streamlit as st

from shardscope.config.errors import StoreError
from shardscope.ui import data, navigation, sidebar

st.set_page_config(page_title="shardscope", page_icon=":material/scatter_plot:", layout="wide")
page = navigation.navigation()
try:
    with data.page_session():  # one store connection for the loaders this rerun runs
        sidebar.render()
        page.run()
except StoreError as exc:  # an unreadable store (newer schema, not DuckDB, busy): say why
    st.error(str(exc), icon=":material/error:")
