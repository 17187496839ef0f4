"""``ParquetSink``: the span pipeline's sink into a Parquet lake (see tracer/lake.py).

The rows are made by the DuckDB sink's own ``prepare`` and ``append`` (and its
``writer_stats`` row), into a private in-memory DuckDB database, and read back per table as
Arrow: the lake holds exactly what the store would, table for table, including any table a
future ingest step fills. The transaction is then rolled back, so the in-memory tables stay
empty. No lock is taken: each writer writes only its own files.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from opentelemetry.sdk.trace import ReadableSpan

from shardscope.tracer.lake import (
    ensure_lake,
    partition_dir,
    split_by,
    write_atomically,
)
from shardscope.tracer.pipeline import PipelineStats
from shardscope.tracer.schema import SCHEMA_VERSION, migrate
from shardscope.tracer.sinks import HEARTBEAT_S, DuckDBSink, PreparedBatch
from shardscope.tracer.store import Store

log = logging.getLogger("shardscope.tracer")
_RUN = "__shardscope_run"
# Tables that never come from a writer's batches.
_NOT_WRITTEN = frozenset({"shardscope_meta", "ingested_spills"})


@dataclass(frozen=True)
class LakeBatch:
    """A prepared batch and its sequence number: a retried write replaces its own files."""

    prepared: PreparedBatch
    seq: int


class ParquetSink:
    """Appends span batches to a lake as Parquet files of this writer's own."""

    name = "parquet"
    primary = True
    heartbeat_interval: float | None = HEARTBEAT_S

    def __init__(self, root: str | Path, service_name: str = "shardscope") -> None:
        self.root = Path(root).expanduser().absolute()
        # Never opened: it only lends the DuckDB sink's conversion and row making.
        self._rows = DuckDBSink(Store(self.root / ".unused.duckdb"), service_name)
        self.writer_id = self._rows.writer_id
        self._seq = itertools.count(1)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lake_ready = False
        self._has_written = False

    def prepare(self, spans: Sequence[ReadableSpan]) -> LakeBatch:
        return LakeBatch(self._rows.prepare(spans), next(self._seq))

    def write(self, batch: LakeBatch, stats: PipelineStats) -> None:
        tables = self._tables(batch.prepared, stats)
        self._publish(self.root, tables, batch.seq)
        self._has_written = True
        dropped = batch.prepared.dropped
        stats.add(
            spans_written=batch.prepared.spans.num_rows,
            events_written=batch.prepared.events.num_rows,
            batches=1,
            sdk_dropped_attributes=dropped["attributes"],
            sdk_dropped_events=dropped["events"],
            sdk_dropped_links=dropped["links"],
        )

    def heartbeat(self, stats: PipelineStats) -> None:
        """A ``writer_stats`` file: this process is alive (after it has written once)."""
        if not self._has_written or not self.root.is_dir():
            return
        tables = self._tables(None, stats)
        self._publish(self.root, tables, next(self._seq))

    def spill(self, batch: LakeBatch, stats: PipelineStats) -> str | None:
        """The lake is unreachable at shutdown: write the batch as a lake of its own in the
        local temporary directory, to be copied into the lake (its files keep their names)."""
        where = Path(tempfile.gettempdir()) / "shardscope-lake-spill" / self.writer_id
        self._publish(where, self._tables(batch.prepared, stats), batch.seq)
        return str(where)

    def _tables(self, prepared: PreparedBatch | None, stats: PipelineStats) -> dict[str, pa.Table]:
        con = self._memory()
        con.execute("BEGIN TRANSACTION")
        try:
            if prepared is not None:
                prepared = self._rows.append(con, prepared)
            self._rows._record_stats(con, stats, prepared)
            return {name: self._read(con, name) for name in self._filled(con)}
        finally:
            con.execute("ROLLBACK")

    def _filled(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY table_name").fetchall() if r[0] not in _NOT_WRITTEN]
        return [n for n in names if con.execute(f'SELECT count(*) FROM "{n}"').fetchone() != (0,)]

    def _read(self, con: duckdb.DuckDBPyConnection, name: str) -> pa.Table:
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND "
            "database_name = current_database() ORDER BY column_index", [name]).fetchall()]
        if "run_id" in columns:
            sql = f'SELECT *, run_id AS {_RUN} FROM "{name}"'
        elif {"trace_id", "span_id"} <= set(columns) and name != "spans":
            # Rows of a span (its events) go to the run of their span, written in this batch.
            sql = (f'SELECT t.*, s.run_id AS {_RUN} FROM "{name}" t LEFT JOIN (SELECT DISTINCT '
                   "trace_id, span_id, run_id FROM spans) s USING (trace_id, span_id)")
        else:
            sql = f'SELECT * FROM "{name}"'
        return con.sql(sql).to_arrow_table()

    def _publish(self, root: Path, tables: dict[str, pa.Table], seq: int) -> None:
        if root != self.root or not self._lake_ready:
            ensure_lake(root, SCHEMA_VERSION)
            self._lake_ready = self._lake_ready or root == self.root
        # Events first, writer_stats last: a reader that sees the counters sees the spans.
        order = sorted(tables, key=lambda n: (n == "writer_stats", n == "spans", n))
        for name in order:
            table = tables[name]
            name_file = f"{seq:08d}.parquet"
            if _RUN not in table.column_names:
                write_atomically(table, partition_dir(root, name, self.writer_id, by_run=False)
                                 / name_file)
                continue
            for run_id, part in split_by(table, _RUN):
                part = part.drop_columns([_RUN])
                write_atomically(part, partition_dir(root, name, self.writer_id, run_id)
                                 / name_file)

    def _memory(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            con = duckdb.connect(":memory:")
            con.execute("SET threads = 1")  # as the DuckDB sink: leave a core to the program
            migrate(con, "memory", "lake")
            self._con = con
        return self._con

    def warm_up(self) -> None:
        self._rows.warm_up()
        self._memory()

    def idle(self) -> None:
        return None

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

