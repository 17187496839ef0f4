"""Widgets shared by the pages: store states, filter bars, run progress, formatting."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from shardscope.analysis.report import format_value
from shardscope.tracer.queries.filters import EpisodeFilter, Facets
from shardscope.tracer.queries.runs import RunProgress, StoreSummary
from shardscope.ui import data
from shardscope.ui.charts import OUTCOME_COLORS

DEMO_HELP = """\
Create one with the demo (three small local models, no API keys, no network; ~10 minutes):

```
shardscope demo --db {path}
```

or run your own matrix:

```
shardscope run --db {path} -s arithmetic -m smollm2-135m-instruct -a react-tools
```

This page refreshes by itself as soon as the first episodes are written.
"""


def ready_store() -> tuple[data.Context, StoreSummary]:
    """This rerun's store and summary; a missing or empty store shows how to fill it and
    stops the page (the sidebar's live refresh brings the page back when data arrives)."""
    ctx = data.current()
    summary = data.summary(ctx.path, ctx.version)
    if summary.state == "missing":
        st.info(f"No store at `{ctx.path}` yet.", icon=":material/database:")
        st.markdown(DEMO_HELP.format(path=ctx.path))
        st.stop()
    if summary.state == "empty" or summary.episodes == 0:
        st.info(f"The store `{ctx.path}` holds no episode yet.", icon=":material/hourglass_empty:")
        st.markdown(DEMO_HELP.format(path=ctx.path))
        st.stop()
    return ctx, summary


def multiselect(label: str, options: tuple[str, ...], key: str, **kwargs: Any) -> tuple[str, ...]:
    # Keep only choices still offered (a filter's values come from the store, which changes).
    if key in st.session_state:
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    return tuple(st.multiselect(label, options, key=key, **kwargs))


def filter_from_state(prefix: str, fields: tuple[str, ...]) -> EpisodeFilter:
    """The filter the bar's widgets hold now (before they are drawn in this rerun)."""
    return _episode_filter({
        name: tuple(st.session_state.get(f"{prefix}_{name}") or ()) for name in fields})


def _episode_filter(chosen: Mapping[str, tuple[str, ...]]) -> EpisodeFilter:
    """The filter of these multiselect fields (by EpisodeFilter's field names; absent: all)."""
    return EpisodeFilter(run_ids=chosen.get("run_ids", ()), suites=chosen.get("suites", ()),
                         tasks=chosen.get("tasks", ()), scaffolds=chosen.get("scaffolds", ()),
                         models=chosen.get("models", ()), outcomes=chosen.get("outcomes", ()))


def filter_bar(facets: Facets, prefix: str, *, fields: tuple[str, ...],
               runs: dict[str, str] | None = None, default_runs: tuple[str, ...] = ()) -> EpisodeFilter:
    """Multiselects for the given EpisodeFilter fields in one row; empty means all."""
    labels = {"run_ids": "Runs", "suites": "Suites", "tasks": "Tasks", "scaffolds": "Scaffolds",
              "models": "Models", "outcomes": "Outcomes"}
    columns = st.columns(len(fields))
    chosen: dict[str, tuple[str, ...]] = {}
    for column, name in zip(columns, fields, strict=True):
        with column:
            options = tuple(runs) if name == "run_ids" and runs is not None else getattr(facets, name)
            extra: dict[str, Any] = {"placeholder": "all"}
            if name == "run_ids" and runs is not None:
                extra["format_func"] = lambda r: runs.get(r, r)
                if f"{prefix}_{name}" not in st.session_state:
                    extra["default"] = [r for r in default_runs if r in options]
            chosen[name] = multiselect(labels[name], options, f"{prefix}_{name}", **extra)
    return _episode_filter(chosen)


def run_labels(summary: StoreSummary) -> dict[str, str]:
    return {r.run_id: f"{r.label} · {r.status}" for r in summary.runs}


def run_progress(run: RunProgress, outcomes: dict[str, int] | None = None) -> None:
    """A progress bar for one run, with its outcome tally when known."""
    done = f"{run.completed:,}" + (f" / {run.planned:,}" if run.planned else "")
    tally = ""
    if outcomes:
        tally = " · " + ", ".join(f"{k}: {v:,}" for k, v in outcomes.items() if v)
    text = f"**{run.label}** — {run.status} — {done} episodes{tally}"
    fraction = run.fraction
    if fraction is None:
        st.markdown(text)
    else:
        st.progress(fraction, text=text)


def outcome_badge(outcome: str | None) -> str:
    color = {"success": "green", "failure": "red", "protocol_error": "orange",
             "budget_exhausted": "orange", "error": "violet"}.get(outcome or "", "gray")
    return f":{color}-badge[{outcome or 'unknown'}]"


def fmt_seconds(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:,.1f} s"


def fmt_cost(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"${value:,.4f}"


def fmt_rate(rate: float, se: float) -> str:
    if rate != rate:  # NaN
        return "–"
    return f"{rate:.0%} ± {se:.0%}" if se == se else f"{rate:.0%}"


__all__ = ["OUTCOME_COLORS", "filter_bar", "outcome_badge", "ready_store", "run_progress"]


def with_dashes(frame: pd.DataFrame, columns: tuple[str, ...], percent: bool = True) -> pd.DataFrame:
    """``columns`` as text, as the report writes them: a missing value (an interval that
    cannot be computed, e.g. from one task) is a dash, not "None"."""
    return frame.assign(**{c: frame[c].map(lambda v: format_value(v, percent)) for c in columns
                           if c in frame})
