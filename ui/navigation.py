"""The app's pages. A new page is a module under ``ui/app_pages/`` and one line in PAGES
(the comparison pages, "Compare" and "Shards", live here too)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to ui/app.py
    title: str
    icon: str
    url_path: str
    default: bool = False


PAGES: list[PageSpec] = [
    PageSpec("app_pages/overview.py", "Overview", ":material/grid_view:", "overview", default=True),
    PageSpec("app_pages/runs.py", "Runs", ":material/table_rows:", "runs"),
    PageSpec("app_pages/trace.py", "Trace explorer", ":material/account_tree:", "trace"),
    PageSpec("app_pages/compare.py", "Compare", ":material/compare_arrows:", "compare"),
    PageSpec("app_pages/shards.py", "Shards", ":material/extension:", "shards"),
    PageSpec("app_pages/scaffolds.py", "Scaffolds", ":material/schema:", "scaffolds"),
    PageSpec("app_pages/sql.py", "SQL console", ":material/terminal:", "sql"),
]

TRACE_PAGE = "app_pages/trace.py"


def navigation() -> StreamlitPage:
    pages = [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default)
             for p in PAGES]
    return st.navigation(pages)
