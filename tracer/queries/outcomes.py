"""The outcomes a run's episodes were stored with, by episode key: what an executor that runs
episodes in other processes counts (and checks for keys stored twice) once they are written."""

from __future__ import annotations

from shardscope.tracer.store import Store

OUTCOMES_SQL = """
SELECT episode_key, outcome FROM episodes
WHERE run_id = ? AND episode_key IS NOT NULL
ORDER BY episode_key, episode_id
"""


def stored_outcomes(store: Store, run_id: str) -> dict[str, list[str]]:
    """Episode key -> the outcome of each stored episode of ``run_id`` with that key (one, unless
    a key was stored twice)."""
    if not store.exists():
        return {}
    outcomes: dict[str, list[str]] = {}
    with store.reader() as con:
        for key, outcome in con.execute(OUTCOMES_SQL, [run_id]).fetchall():
            outcomes.setdefault(key, []).append(outcome)
    return outcomes
