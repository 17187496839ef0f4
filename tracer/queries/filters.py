"""Which episodes a page, a command or a comparison looks at: one filter that is both a SQL
condition over the ``episodes`` view and a mask over frames with its columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from shardscope.tracer.attributes import Outcome

OUTCOMES = (Outcome.SUCCESS, Outcome.FAILURE, Outcome.PROTOCOL_ERROR, Outcome.BUDGET_EXHAUSTED,
            Outcome.ERROR)


@dataclass(frozen=True)
class EpisodeFilter:
    """Which episodes a page shows: each non-empty field narrows (values are OR-ed within it)."""

    run_ids: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    scaffolds: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    search: str = ""  # substring of the task id, episode id, final answer or error
    ablations: bool = True  # include shard-ablation episodes

    _COLUMNS = (("run_id", "run_ids"), ("suite", "suites"), ("task_id", "tasks"),
                ("scaffold", "scaffolds"), ("model", "models"), ("outcome", "outcomes"))

    def where(self) -> tuple[str, list[Any]]:
        """A SQL condition over the ``episodes`` view, with its parameters."""
        clauses, params = ["TRUE"], []
        for column, name in self._COLUMNS:
            values = getattr(self, name)
            if values:
                clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.search.strip():
            clauses.append("concat_ws(' ', task_id, episode_id, final_answer, error) ILIKE ?")
            params.append(f"%{self.search.strip()}%")
        if not self.ablations:
            clauses.append("ablation_shard IS NULL")
        return " AND ".join(clauses), params

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        """The same filter over a frame with those columns (``search`` is not applied)."""
        keep = pd.Series(True, index=frame.index)
        for column, name in self._COLUMNS:
            values = getattr(self, name)
            if values and column in frame:
                keep &= frame[column].isin(values)
        if not self.ablations and "ablated" in frame:
            keep &= ~frame["ablated"].astype(bool)
        return keep


@dataclass(frozen=True)
class Facets:
    """The distinct values the filter widgets offer."""

    run_ids: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    scaffolds: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()


def facets_of(frame: pd.DataFrame) -> Facets:
    def values(column: str) -> tuple[str, ...]:
        return tuple(sorted(str(v) for v in frame[column].dropna().unique()))

    known = values("outcome")
    outcomes = tuple(o for o in OUTCOMES if o in known) + tuple(o for o in known if o not in OUTCOMES)
    return Facets(values("run_id"), values("suite"), values("task_id"), values("scaffold"),
                  values("model"), outcomes)
