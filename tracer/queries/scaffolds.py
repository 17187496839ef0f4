"""The scaffold versions a store holds: one row per (scaffold, hash) with its recorded
parameters and prompts, how many episodes ran under it, and when."""

from __future__ import annotations

import pandas as pd

from shardscope.tracer import attributes as A
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store

_VERSIONS = f"""
SELECT attributes->>'$."{A.SCAFFOLD_NAME}"' AS scaffold,
       attributes->>'$."{A.SCAFFOLD_HASH}"' AS scaffold_hash,
       any_value(attributes->>'$."{A.SCAFFOLD_PARAMS}"') AS params,
       any_value(attributes->>'$."{A.SCAFFOLD_PROMPTS}"') AS prompts,
       count(*) AS episodes, min(start_time) AS first_seen, max(start_time) AS last_seen
FROM spans WHERE span_type = 'episode' GROUP BY ALL ORDER BY scaffold, last_seen DESC
"""


def scaffold_versions(store: Store) -> pd.DataFrame:
    """Every (scaffold, hash) the store's episodes ran under, newest first per scaffold."""
    if not store.exists():
        return pd.DataFrame(columns=["scaffold", "scaffold_hash", "params", "prompts", "episodes",
                                     "first_seen", "last_seen"])
    return read_frame(store, _VERSIONS)
