"""The episodes the benchmark scores read: baselines with their tool-call counts."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store

_SQL = """
SELECT episode_id, run_id, model, scaffold, suite, task_id, seed, outcome, score, steps,
       tool_calls, duration_s
FROM episodes
WHERE outcome IS NOT NULL AND ablation_shard IS NULL {runs}
ORDER BY model, scaffold, suite, task_id, seed
"""


def benchmark_episodes(store: Store, run_ids: Sequence[str] = ()) -> pd.DataFrame:
    """Finished baseline episodes (of these runs when given), with ``tool_calls``."""
    if not run_ids:
        return read_frame(store, _SQL.format(runs=""))
    return read_frame(store, _SQL.format(runs="AND run_id IN (SELECT unnest(?))"), [list(run_ids)])
