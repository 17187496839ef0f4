"""The app's access to the store: which store, its version token, and cached loaders.

Every loader is a ``shardscope.tracer.queries`` function (or a comparison over what they read)
behind ``st.cache_data`` keyed on the store path and its version token (size + mtime of the
file and its WAL, computed on every rerun without opening the store), so a cached answer is
reused exactly until a writer commits. The loaders that miss their cache in one rerun read
through one read-only connection (:func:`page_session`), opened by the first and closed when
the rerun ends: the app never holds the store between reruns.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import pandas as pd
import streamlit as st

from shardscope.analysis.clusters import Clusters
from shardscope.analysis.compare import (
    Comparison,
    ablation_detail,
    answer_clusters,
    compare,
    follow_rates,
)
from shardscope.config.settings import load_settings
from shardscope.tracer.lake_store import open_source
from shardscope.tracer.queries import trace
from shardscope.tracer.queries.comparison import Selection, systems_of
from shardscope.tracer.queries.episodes import EpisodePage, episode_table
from shardscope.tracer.queries.filters import EpisodeFilter
from shardscope.tracer.queries.overview import CubeCache
from shardscope.tracer.queries.runs import StoreSummary, store_summary
from shardscope.tracer.queries.sql_worker import SqlWorker
from shardscope.tracer.queries.status import Relation, describe_schema, store_version
from shardscope.tracer.queries.user_sql import SqlLimits
from shardscope.tracer.store import Store

ENV_DB = "SHARDSCOPE_DB"  # the setting's variable: `shardscope ui` passes --db as well
class _CacheOptions(TypedDict):
    show_spinner: bool
    max_entries: int


_CACHE: _CacheOptions = {"show_spinner": False, "max_entries": 16}


def store_path(argv: list[str] | None = None) -> Path:
    """The store: ``-- --db PATH`` after ``streamlit run ui/app.py``, else the `db` setting."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db", type=Path)
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return Path(load_settings(db=known.db).db).expanduser().absolute()


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    # A Store holds no connection, only its path and lock files; one per path checks the
    # schema version once.
    return open_source(path)  # a Parquet lake when the path is a directory


@st.cache_resource(show_spinner=False)
def _sql_worker() -> SqlWorker:
    # The console's queries run in this child process, so none can take the server down.
    return SqlWorker()


@st.cache_resource(show_spinner=False)
def _cubes() -> CubeCache:
    return CubeCache()


def page_session() -> contextlib.AbstractContextManager[None]:
    """This rerun's :meth:`Store.session`: a loader that misses its cache opens the store
    once for every other (an opening costs about a ``count(*)`` of a 1M-span store); nothing
    is opened when every loader hits. Fragment reruns (the live refresh) read as before."""
    return current().store.session()


@dataclass(frozen=True)
class Context:
    """The store as of this rerun."""

    path: str
    version: str

    @property
    def store(self) -> Store:
        return _store(self.path)


def current() -> Context:
    path = str(store_path())
    return Context(path, store_version(path))


@st.cache_data(**_CACHE)
def summary(path: str, version: str) -> StoreSummary:
    return store_summary(_store(path))


def cube(ctx: Context, runs: tuple[str | None, ...] | None) -> pd.DataFrame:
    """The episode cube of these runs (None: all), recomputing only runs that changed."""
    return _cubes().cube(ctx.store, summary(ctx.path, ctx.version), ctx.version, runs)


@st.cache_data(**_CACHE)
def episodes(path: str, version: str, flt: EpisodeFilter, sort: str, descending: bool,
             limit: int) -> EpisodePage:
    return episode_table(_store(path), flt, sort=sort, descending=descending, limit=limit,
                         with_facets=True)


@st.cache_data(**_CACHE)
def trace_page(path: str, version: str, episode_id: str | None) -> trace.TracePage:
    return trace.load_trace_page(_store(path), episode_id)


@st.cache_data(**_CACHE)
def tokens(path: str, version: str, span_id: str) -> pd.DataFrame:
    return trace.token_stream(_store(path), span_id)


@st.cache_data(**_CACHE)
def span_detail(path: str, version: str, span_id: str) -> trace.SpanDetail | None:
    return trace.span_detail(_store(path), span_id)


@st.cache_data(**_CACHE)
def schema(path: str, version: str) -> list[Relation]:
    return describe_schema(_store(path))


@st.cache_data(show_spinner=False, max_entries=32)
def sql(path: str, version: str, text: str, max_rows: int) -> tuple[pd.DataFrame, bool]:
    """User SQL (sandboxed, read-only, in the worker process); ``version`` is the one when
    the user pressed Run."""
    settings = load_settings()
    table = _sql_worker().run(path, text, max_rows=max_rows + 1,
                              limits=SqlLimits.from_settings(settings),
                              lock_timeout=settings.lock_timeout)
    return table.slice(0, max_rows).to_pandas(), table.num_rows > max_rows


# --- comparison pages (shardscope.analysis) ---------------------------------------------------
@st.cache_data(show_spinner="Comparing…", max_entries=8)
def comparison(path: str, version: str, selection: Selection, systems: tuple[str, ...],
               metric: str) -> Comparison:
    """Statistics, divergences and tool use of these systems (no clusters: see below; no
    likelihood attributions: the page shows none)."""
    return compare(_store(path), selection, metric=metric, clusters=False, systems=systems,
                   likelihood=False)


@st.cache_data(show_spinner="Embedding answers…", max_entries=4)
def clusters(path: str, version: str, selection: Selection, systems: tuple[str, ...],
             method: str) -> Clusters:
    # The episodes come from the comparison the page has just shown (cached): not read again.
    return answer_clusters(comparison(path, version, selection, systems, "success").episodes, method)


@st.cache_data(show_spinner="Reading ablations…", max_entries=8)
def ablations(path: str, version: str, selection: Selection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shard influence and the ablated episodes beside their baselines."""
    return ablation_detail(_store(path), selection)


@st.cache_data(show_spinner="Classifying answers under replaced shards…", max_entries=8)
def follows(path: str, version: str, selection: Selection) -> pd.DataFrame:
    """Per model · scaffold: follow / keep / other under replaced shards that declare
    ``implied_answer`` (tasks from the shipped suites and the ``suites_dir`` setting)."""
    return follow_rates(ablations(path, version, selection)[1])


@st.cache_data(show_spinner="Reading likelihood attributions…", max_entries=8, ttl=10)
def attributions(path: str, version: str, suite: str) -> pd.DataFrame:
    """The `attributions` rows of a suite, with their episode's scaffold (a table that
    `shardscope attribute` writes without new spans: re-read every 10 s)."""
    from shardscope.tracer.queries.attributions import stored_attributions

    return stored_attributions(_store(path), suites=(suite,) if suite else ())


@st.cache_data(show_spinner=False, max_entries=16, ttl=10)
def token_deltas(path: str, version: str, span_id: str, shard: str, mode: str) -> pd.DataFrame:
    """One scored step's output tokens and their Δ log p with the shard ablated."""
    from shardscope.tracer.queries.attributions import token_deltas as deltas

    return deltas(_store(path), span_id, shard, mode)


@st.cache_data(**_CACHE)
def systems(path: str, version: str) -> pd.DataFrame:
    """Suite x model x scaffold combinations with episodes (baselines and ablations)."""
    return systems_of(_store(path))


@st.cache_data(**_CACHE)
def scaffold_versions(path: str, version: str) -> pd.DataFrame:
    """Every (scaffold, hash) the store's episodes ran under, with params and prompts."""
    from shardscope.tracer.queries.scaffolds import scaffold_versions as versions

    return versions(_store(path))
