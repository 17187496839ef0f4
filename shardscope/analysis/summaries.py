"""Per-group tables of episodes as the Overview and the CLI's run summary show them: success
rates with their standard error clustered by task and 95% interval, tokens, cost, time and
outcome counts. Pure functions over the frames :mod:`shardscope.tracer.queries` reads (the
Overview's episode cube, a run's episodes).

Every success rate here goes through :func:`shardscope.analysis.stats.estimates`, the one
estimator ``compare`` and its report use too, so the app, the terminal and the report give
the same interval for the same episodes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pandas as pd

from shardscope.analysis import stats
from shardscope.tracer.attributes import Outcome
from shardscope.tracer.queries.filters import OUTCOMES, EpisodeFilter

UNKNOWN = "unknown"  # the cube's outcome of an episode that recorded none
RATES = ("tasks", "success_rate", "success_se", "ci_low", "ci_high")


def success_rates(episodes: pd.DataFrame, by: Sequence[str], *,
                  weight: str | None = None) -> pd.DataFrame:
    """Per group in ``by``: tasks, success rate, SE clustered by task and 95% interval of
    the finished episodes (``weight``: a column of counts, when a row stands for many)."""
    rates = stats.estimates(episodes, "success", by=by, weight=weight)
    rates = rates.rename(columns={"mean": "success_rate", "se": "success_se"})
    return rates[[*by, *RATES]]


# --- the Overview: functions over the episode cube (tracer.queries.overview.episode_cube) ---
_TOTALS = ("episodes", "tokens", "tokens_per_episode", "cost_usd", "priced_episodes", "seconds",
           "seconds_per_episode", *OUTCOMES)
SUMMARY_COLUMNS = ("episodes", *RATES, *_TOTALS[1:])


def model_summary(cube: pd.DataFrame, flt: EpisodeFilter = EpisodeFilter(),
                  by: Sequence[str] = ("model",)) -> pd.DataFrame:
    """Per group: episodes, success rate with its clustered SE and 95% interval, tokens,
    cost and time (totals and per episode), and the count of each outcome."""
    rows = cube[flt.mask(cube)]
    records = []
    for key, group in rows.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        n = int(group["episodes"].sum())
        outcome_counts = group.groupby("outcome")["episodes"].sum()
        records.append({
            **dict(zip(by, key, strict=True)), "episodes": n,
            "tokens": int(group["tokens"].sum()), "tokens_per_episode": group["tokens"].sum() / n,
            # NaN when no episode of the group has a price
            "cost_usd": float(pd.to_numeric(group["cost_usd"]).sum(min_count=1)),
            "priced_episodes": int(group["priced"].sum()),
            "seconds": float(group["seconds"].sum()),
            "seconds_per_episode": group["seconds"].sum() / n,
            **{o: int(outcome_counts.get(o, 0)) for o in OUTCOMES},
        })
    totals = pd.DataFrame.from_records(records, columns=[*by, *_TOTALS])
    known = rows.assign(outcome=rows["outcome"].where(rows["outcome"] != UNKNOWN))
    rates = success_rates(known, by, weight="episodes")
    return totals.merge(rates, on=list(by), how="left")[[*by, *SUMMARY_COLUMNS]]


def outcome_matrix(cube: pd.DataFrame, flt: EpisodeFilter = EpisodeFilter()) -> pd.DataFrame:
    """Per model x scaffold x task: episodes, success rate, and the count of each outcome."""
    rows = cube[flt.mask(cube)]
    keys = ["model", "scaffold", "suite", "task_id"]
    counts = rows.pivot_table(index=keys, columns="outcome", values="episodes", aggfunc="sum",
                              fill_value=0)
    counts = counts.reindex(columns=[o for o in OUTCOMES if o in counts.columns]
                            + [o for o in counts.columns if o not in OUTCOMES], fill_value=0)
    out = counts.reset_index()
    out.columns.name = None
    outcome_columns = [c for c in out.columns if c not in keys]
    out["episodes"] = out[outcome_columns].sum(axis=1).astype(int)
    successes = out.get(Outcome.SUCCESS, 0)
    out["success_rate"] = successes / out["episodes"]
    out["top_outcome"] = out[outcome_columns].idxmax(axis=1) if len(out) else []
    return out.sort_values(keys, ignore_index=True)


def run_outcomes(cube: pd.DataFrame) -> pd.DataFrame:
    """Per run: episodes and the count of each outcome (for progress next to the runs)."""
    if cube.empty:
        return pd.DataFrame(columns=["run_id", "episodes", *OUTCOMES])
    table = cube.pivot_table(index="run_id", columns="outcome", values="episodes", aggfunc="sum",
                             fill_value=0).reindex(columns=list(OUTCOMES), fill_value=0)
    table.insert(0, "episodes", table.sum(axis=1))
    table.columns.name = None
    return table.reset_index()


# --- the CLI: a run's summary (tracer.queries.runs.run_episodes) ------------------------------
RUN_SUMMARY_COLUMNS = ("model", "scaffold", "episodes", *RATES, "mean_score", "mean_steps",
                       "tokens", "cost_usd", "mean_seconds", "protocol_errors",
                       "budget_exhausted", "errors")


def run_summary(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per model x scaffold of a run's episodes: success rate with its SE clustered by task
    and 95% interval, mean score, steps and time, tokens, cost and the failures by kind."""
    keys = list(stats.SYSTEM_KEYS)
    if episodes.empty:
        return pd.DataFrame(columns=list(RUN_SUMMARY_COLUMNS))

    def count(outcome: str) -> tuple[str, object]:
        return "outcome", lambda o: int((o == outcome).sum())

    totals = episodes.groupby(keys, sort=True, dropna=False).agg(
        episodes=("outcome", "size"), mean_score=("score", "mean"),
        mean_steps=("steps", "mean"), tokens=("tokens", "sum"),
        cost_usd=("cost_usd", lambda c: pd.to_numeric(c).sum(min_count=1)),
        mean_seconds=("duration_s", "mean"), protocol_errors=count(Outcome.PROTOCOL_ERROR),
        budget_exhausted=count(Outcome.BUDGET_EXHAUSTED), errors=count(Outcome.ERROR),
    ).reset_index()
    rates = success_rates(episodes, keys)
    return totals.merge(rates, on=keys, how="left")[list(RUN_SUMMARY_COLUMNS)]


def informative_pair(systems: pd.DataFrame) -> list[str]:
    """The two systems (rows of ``tracer.queries.comparison.systems_of``) worth comparing
    first: two models under one scaffold (the model the one thing that changes) whose
    success rates differ most, then whose outcomes differ most (total variation distance);
    two systems at 0% that fail alike are the least useful pair."""
    outcomes = [c for c in systems.columns if c.startswith("outcome_")]
    rows = systems[systems.episodes > 0].reset_index(drop=True)
    if len(rows) < 2 or not outcomes:
        return list(rows.system[:2])
    mix = rows[outcomes].div(rows[outcomes].sum(axis=1).where(lambda n: n > 0), axis=0).fillna(0.0)
    best: tuple[float, float, float] | None = None
    chosen = list(rows.system[:2])
    for i, j in itertools.combinations(range(len(rows)), 2):
        same_scaffold = float(rows.scaffold[i] == rows.scaffold[j] and rows.model[i] != rows.model[j])
        gap = abs(float(mix.outcome_success[i] - mix.outcome_success[j])) if "outcome_success" in mix else 0.0
        spread = 0.5 * float((mix.iloc[i] - mix.iloc[j]).abs().sum())
        score = (same_scaffold, gap, spread)
        if best is None or score > best:
            best, chosen = score, [rows.system[i], rows.system[j]]
    return chosen
