"""What `shardscope export` reads: every exported table and view as one SELECT narrowed by
run, suite and model, and the one function that writes a relation as hive-partitioned Parquet
(:func:`write_parquet`, DuckDB's own ``COPY ... PARTITION_BY``; reusable by anything that
writes a Parquet lake).

The views carry their episode's context (run_id, suite, model), so each is filtered by its own
columns. The raw tables are filtered through the episodes the filter selects: ``spans`` keeps
the selected episodes' spans and the run-level spans (no episode) of their runs;
``span_events`` and ``log_events`` gain their span's ``run_id`` (the partition column) by a
join on (trace_id, span_id).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from shardscope.config.errors import ShardscopeError

# Exported in this order: the views users query, then the raw tables they are built from.
VIEWS = ("episodes", "steps", "llm_calls", "tool_calls", "messages", "token_events",
         "llm_attempts", "runs")
TABLES = ("spans", "span_events", "log_events")
RELATIONS = VIEWS + TABLES
PARTITION_COLUMN = "run_id"
EMPTY_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # DuckDB's name for NULL


class ExportError(ShardscopeError):
    """An export that cannot be written (the target exists, a path is not a directory)."""


@dataclass(frozen=True)
class ExportFilter:
    """Which runs, suites and models to export; an empty field does not narrow."""

    run_ids: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @property
    def narrows_episodes(self) -> bool:
        return bool(self.suites or self.models)

    def where(self, *, runs: bool = True, episodes: bool = True) -> tuple[str, list[Any]]:
        """A condition over a relation with run_id, suite and model columns."""
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        pairs = ((("run_id", self.run_ids),) if runs else ()) + (
            (("suite", self.suites), ("model", self.models)) if episodes else ())
        for column, values in pairs:
            if values:
                clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        return " AND ".join(clauses), params


def _spans_where(flt: ExportFilter, table: str = "") -> tuple[str, list[Any]]:
    """The spans the filter keeps: those of its runs; with suites or models, only the spans of
    the selected episodes and the run-level spans (no episode) of those episodes' runs."""
    if not flt.narrows_episodes:
        if not flt.run_ids:
            return "TRUE", []
        return (f"{table}run_id IN ({', '.join('?' for _ in flt.run_ids)})",
                list(flt.run_ids))
    where, params = flt.where()
    return (f"({table}episode_id IN (SELECT episode_id FROM episodes WHERE {where}) OR "
            f"({table}episode_id IS NULL AND {table}run_id IN "
            f"(SELECT run_id FROM episodes WHERE {where})))", params + params)


def relation_sql(name: str, flt: ExportFilter) -> tuple[str, list[Any]]:
    """The SELECT (and its parameters) that exports relation ``name`` under ``flt``."""
    if name in VIEWS and name != "runs":
        where, params = flt.where()
        return f"SELECT * FROM {name} WHERE {where}", params
    if name == "runs":
        if not flt.narrows_episodes:
            where, params = flt.where(episodes=False)
            return f"SELECT * FROM runs WHERE {where}", params
        where, params = flt.where()
        return f"SELECT * FROM runs WHERE run_id IN (SELECT run_id FROM episodes WHERE {where})", params
    if name == "spans":
        where, params = _spans_where(flt)
        return f"SELECT * FROM spans WHERE {where}", params
    if name in ("span_events", "log_events"):
        where, params = _spans_where(flt, "s.")
        # Events of a span the filter keeps; with no filter, log records with no stored span too.
        join = "LEFT JOIN" if where == "TRUE" and name == "log_events" else "JOIN"
        return (f"SELECT e.*, s.run_id FROM {name} e {join} (SELECT DISTINCT trace_id, span_id, "
                f"run_id FROM spans s WHERE {where}) s "
                f"ON s.trace_id = e.trace_id AND s.span_id = e.span_id"), params
    raise ValueError(f"not an exported relation: {name}")


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def write_parquet(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any],
                  directory: Path, *, partition_by: str | None = PARTITION_COLUMN,
                  overwrite: bool = False, compression: str = "zstd") -> int:
    """Write the rows of ``sql`` as Parquet under ``directory`` (hive-partitioned by
    ``partition_by``: ``directory/run_id=<id>/data_0.parquet``, NULL as
    ``__HIVE_DEFAULT_PARTITION__``; the column is kept in the files too, so each file stands
    alone; no rows: one empty file with the columns); returns the rows written.
    ``directory`` must not exist unless ``overwrite``.

    Read it back with ``read_parquet('directory/*/*.parquet', hive_partitioning = true)``.
    """
    if directory.exists():
        if not overwrite:
            raise ExportError(f"{directory} already exists; choose another --out or pass "
                              "--overwrite")
        if not directory.is_dir():
            raise ExportError(f"{directory} exists and is not a directory")
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    options = [f"FORMAT parquet, COMPRESSION {compression}"]
    if partition_by:
        options.append(f"PARTITION_BY ({partition_by}), WRITE_PARTITION_COLUMNS true")
    else:
        directory.mkdir()
    target = directory if partition_by else directory / "data_0.parquet"
    row = con.execute(f"COPY ({sql}) TO {_literal(target)} ({', '.join(options)})",
                      list(params)).fetchone()
    written = int(row[0]) if row else 0
    if not written and partition_by:
        # No rows, no partition: one empty file keeps the columns, and the same glob reads it.
        empty = directory / f"{partition_by}={EMPTY_PARTITION}"
        empty.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY (SELECT * FROM ({sql}) LIMIT 0) TO "
                    f"{_literal(empty / 'data_0.parquet')} (FORMAT parquet)", list(params))
    return written


def relation_rows(con: duckdb.DuckDBPyConnection, name: str, flt: ExportFilter) -> int:
    """How many rows relation ``name`` exports under ``flt``."""
    sql, params = relation_sql(name, flt)
    row = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
    return int(row[0]) if row else 0


def missing_values(con: duckdb.DuckDBPyConnection, flt: ExportFilter) -> list[str]:
    """Filter values that match no episode (or run), to name them in the error."""
    missing = []
    for column, values, source in (("run_id", flt.run_ids, "spans"),
                                   ("suite", flt.suites, "episodes"),
                                   ("model", flt.models, "episodes")):
        if not values:
            continue
        known = {r[0] for r in con.execute(
            f"SELECT DISTINCT {column} FROM {source} WHERE {column} IN "
            f"({', '.join('?' for _ in values)})", list(values)).fetchall()}
        missing += [f"{column} {v!r}" for v in values if v not in known]
    return missing


# --- OTLP rows -----------------------------------------------------------------------------
# One row per span with its events as a list, for the OTLP JSON file (tracer/otlp_file.py).
_SPAN_COLUMNS = ("trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status_code, "
                 "status_message, attributes, links, resource, resource_schema_url, scope_name, "
                 "scope_version, scope_attributes, scope_schema_url, dropped_attributes, "
                 "dropped_events, dropped_links, trace_state, flags")


def otlp_spans_sql(flt: ExportFilter) -> tuple[str, list[Any]]:
    """Every exported span with its events (``events``: a list of structs, in order)."""
    where, params = _spans_where(flt, "s.")
    sql = f"""
WITH ev AS (
    SELECT trace_id, span_id,
           list({{'name': name, 'time_ns': time_ns, 'attributes': attributes,
                  'dropped_attributes': dropped_attributes}} ORDER BY seq) AS events
    FROM span_events GROUP BY trace_id, span_id)
SELECT {", ".join("s." + c.strip() for c in _SPAN_COLUMNS.split(","))}, ev.events
FROM spans s LEFT JOIN ev ON ev.trace_id = s.trace_id AND ev.span_id = s.span_id
WHERE {where}
ORDER BY s.resource, s.scope_name, s.trace_id, s.start_ns"""
    return sql, params


def otlp_logs_sql(flt: ExportFilter) -> tuple[str, list[Any]]:
    """Every exported log record (``log_events`` with the run of its span)."""
    sql, params = relation_sql("log_events", flt)
    return f"SELECT * FROM ({sql}) ORDER BY resource, scope_name, time_ns", params


def span_count(con: duckdb.DuckDBPyConnection, flt: ExportFilter) -> int:
    return relation_rows(con, "spans", flt)
