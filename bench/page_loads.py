"""What each page of the app loads in its default state, as plain calls (bench/ui_load.py
times these against a plain count on the same store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shardscope.analysis.compare import ablation_detail, compare
from shardscope.tracer.queries.comparison import Selection, systems_of
from shardscope.tracer.queries.episodes import episode_table
from shardscope.tracer.queries.overview import episode_cube
from shardscope.tracer.queries.runs import store_summary
from shardscope.tracer.queries.status import describe_schema
from shardscope.tracer.queries.trace import load_trace_page, token_stream
from shardscope.tracer.store import Store


def page_loaders() -> dict[str, Callable[[Store], Any]]:
    """Per page of the app, the loads it makes when opened with no filter or selection (the
    sidebar's summary included; the SQL console runs nothing until asked), through one
    connection per page load as the app reads them."""

    def overview(store: Store) -> Any:  # opens on the latest run
        summary = store_summary(store)
        return summary, episode_cube(store, [summary.runs[0].run_id])

    def overview_all_runs(store: Store) -> Any:
        return store_summary(store), episode_cube(store)

    def runs(store: Store) -> Any:
        return store_summary(store), episode_table(store, with_facets=True)

    def trace(store: Store) -> Any:
        summary, page = store_summary(store), load_trace_page(store)
        assert page.trace is not None
        return summary, page, token_stream(store, page.trace.llm_calls["span_id"].iloc[0])

    def sql(store: Store) -> Any:
        return store_summary(store), describe_schema(store)

    def compare_page(store: Store) -> Any:  # the first suite, two models under one scaffold
        summary, systems = store_summary(store), systems_of(store)
        here = systems[systems.suite == systems.suite.min()]
        scaffold = here.groupby("scaffold").model.nunique().idxmax()
        chosen = tuple(here[here.scaffold == scaffold].system[:2])
        return summary, compare(store, Selection(suites=(here.suite.iloc[0],)), clusters=False,
                                systems=chosen, likelihood=False)  # as ui/data.comparison

    def shards(store: Store) -> Any:
        summary, systems = store_summary(store), systems_of(store)
        return summary, ablation_detail(store, Selection(suites=(systems.suite.min(),)))

    pages = {"overview": overview, "overview, all runs": overview_all_runs, "runs": runs,
             "trace": trace, "compare": compare_page, "shards": shards, "sql": sql}
    return {name: _in_session(load) for name, load in pages.items()}


def _in_session(load: Callable[[Store], Any]) -> Callable[[Store], Any]:
    """As the app runs a page (ui/app.py): its loads share one connection (Store.session)."""

    def run(store: Store) -> Any:
        with store.session():
            return load(store)

    return run
