"""Our own (trusted) SQL into pandas frames, on a store or an open connection. SQL typed by a
user goes through :func:`shardscope.tracer.queries.user_sql.run_sql` instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from shardscope.tracer.store import Store

# Where a query function reads: a store (one read-only connection for the call) or an open
# connection (``with store.reader() as con``: reading many things through one saves ~0.1 s
# per read on a large store).
Source = Store | duckdb.DuckDBPyConnection


def read_frame(store: Store, sql: str, params: Any = None) -> pd.DataFrame:
    """Our own SQL's rows as a frame, through one read-only connection; not for user input."""
    with store.reader() as con:
        return con.execute(sql, params or []).df()


def query_frame(con: duckdb.DuckDBPyConnection, sql: str,
                params: Sequence[Any] = ()) -> pd.DataFrame:
    """One query's rows on an open connection, as a frame."""
    return con.execute(sql, list(params)).df()


def aggregate_row(con: duckdb.DuckDBPyConnection, sql: str,
                  params: Sequence[Any] = ()) -> tuple[Any, ...]:
    """The one row of an aggregate query (``SELECT count(*) ...`` always returns one)."""
    row = con.execute(sql, list(params)).fetchone()
    if row is None:
        raise RuntimeError(f"an aggregate returned no row: {sql}")
    return row


def frame_of(source: Source, sql: str, params: Any = None) -> pd.DataFrame:
    """Rows of our own SQL from a store or an open connection (``params``: list or dict)."""
    if isinstance(source, Store):
        return read_frame(source, sql, params)
    return source.execute(sql, params or []).df()
