"""Which spans of a request the store already holds, without a query per request.

A retrying exporter re-sends spans whose acknowledgement it lost, so every request must be
checked against the store; a query per request costs more than the insert itself on a large
store. The collector instead keeps the 64-bit span id of every stored span in memory (8 bytes
a span: 80 MB for ten million), read once when it opens the store and topped up, each time it
re-opens it, with the rows other writers appended meanwhile (by ``rowid``, which DuckDB
filters without a scan). A request's span ids are looked up there; only the rare hit is
confirmed against the store by its full (trace_id, span_id), so a 64-bit collision between
two traces costs a query, never a span.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np

FOLD_AT = 65_536  # recent ids are merged into the sorted array in batches of this many


class KnownSpanIds:
    """The span ids (as unsigned 64-bit ints) of every span in the store."""

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()
        self._seen_rowid = -1

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def catch_up(self, con: duckdb.DuckDBPyConnection) -> None:
        """Add the ids of every row appended to ``spans`` since the last call."""
        found = con.execute(
            "SELECT rowid AS r, coalesce(TRY_CAST('0x' || span_id AS UBIGINT), 0) AS id "
            "FROM spans WHERE rowid > ?", [self._seen_rowid],
        ).fetchnumpy()
        rowids, ids = found["r"], np.asarray(found["id"], dtype=np.uint64)
        if not len(rowids):
            return
        self._seen_rowid = int(rowids.max())
        self._merge(ids[ids != 0])  # 0 is no valid span id (and stands for a non-hex one)

    def add(self, ids: Sequence[int]) -> None:
        """Ids just written by this process (also seen by the next ``catch_up``: harmless)."""
        self._recent.update(ids)
        if len(self._recent) >= FOLD_AT:
            self._merge(np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent)))
            self._recent.clear()

    def _merge(self, ids: np.ndarray) -> None:
        if ids.size:
            self._sorted = np.union1d(self._sorted, ids)

    def hits(self, ids: Sequence[int]) -> list[int]:
        """Positions in ``ids`` of ids the store (probably) holds."""
        if not len(self):
            return []
        out: list[int] = []
        if self._sorted.size:
            array = np.asarray(ids, dtype=np.uint64)
            where = np.searchsorted(self._sorted, array).clip(max=self._sorted.size - 1)
            out = np.flatnonzero(self._sorted[where] == array).tolist()
        if self._recent:
            recent = self._recent
            out = sorted({*out, *(i for i, span_id in enumerate(ids) if span_id in recent)})
        return out


def span_id_ints(span_ids: Sequence[str]) -> list[int]:
    """Hex span ids (as the store keeps them) as ints."""
    return [int(span_id, 16) for span_id in span_ids]
