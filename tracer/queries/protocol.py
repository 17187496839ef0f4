"""The reads of the format-vs-substance view: every baseline episode with its outcome and the
last reply its model gave (the reply a text protocol could not read, when the outcome is
``protocol_error``)."""

from __future__ import annotations

import pandas as pd

from shardscope.tracer.queries.comparison import Selection
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store


def last_replies(store: Store, selection: Selection) -> pd.DataFrame:
    """Per finished baseline episode of the selection: model, scaffold, suite, task, outcome,
    final answer, and its last step's output and protocol error."""
    where, params = selection.where()
    return read_frame(store, f"""
        WITH last_step AS (
            SELECT episode_id, arg_max(output, step_index) AS last_output,
                   arg_max(protocol_error, step_index) AS last_protocol_error
            FROM steps GROUP BY episode_id)
        SELECT e.episode_id, e.model, e.scaffold, e.suite, e.task_id, e.seed, e.outcome,
               e.final_answer, l.last_output, l.last_protocol_error
        FROM episodes e LEFT JOIN last_step l USING (episode_id)
        WHERE e.ablation_shard IS NULL AND e.outcome IS NOT NULL AND {where}
        ORDER BY e.model, e.scaffold, e.suite, e.task_id, e.seed""", params)
