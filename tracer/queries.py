"""Query functions over the store, shared by the CLI, the UI and users' own code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from shardscope.config.errors import QueryError
from shardscope.tracer.schema import DESCRIPTIONS, VIEWS, stored_version
from shardscope.tracer.sinks import spill_dir
from shardscope.tracer.store import Store

_HINTS = (
    ("Catalog Error", "run `shardscope query --schema` for the tables and views"),
    ("Binder Error", "run `shardscope query --schema` for the columns of each view"),
    ("read-only mode", "queries cannot change the store"),
    ("Permission Error", "queries cannot read or write files outside the store"),
)


def run_sql(
    store: Store, sql: str, params: list[Any] | None = None, *, max_rows: int | None = None
) -> pa.Table:
    """Run user SQL read-only and sandboxed (no file access); errors become QueryError."""
    if not sql or not sql.strip():
        raise QueryError("empty query: pass a SQL statement, e.g. \"SELECT * FROM episodes\"")
    with store.reader(sandboxed=True) as con:
        try:
            relation = con.sql(sql, params=params) if params else con.sql(sql)
            if relation is None:  # a statement with no result set (SET, PRAGMA ...)
                return pa.table({})
            if max_rows is None:
                return relation.to_arrow_table()
            return relation.limit(max_rows).to_arrow_table()
        except duckdb.Error as exc:
            raise query_error(exc) from None


def query_error(exc: duckdb.Error) -> QueryError:
    """A one-line, actionable message for a DuckDB error raised by user SQL."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    hint = next((h for key, h in _HINTS if key in first), None)
    return QueryError(f"{first}" + (f" ({hint})" if hint else ""))


def read_frame(store: Store, sql: str, params: list[Any] | None = None) -> Any:
    """Our own (trusted) SQL as a pandas DataFrame; for library code, not for user input."""
    with store.reader() as con:
        return con.execute(sql, params or []).df()


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str | None


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str  # "view" or "table"
    description: str
    columns: tuple[Column, ...]


_PUBLIC_ORDER = [*VIEWS, "spans", "span_events", "writer_stats", "ingested_spills", "shardscope_meta"]


def describe_schema(store: Store) -> list[Relation]:
    """Every table and view of the store with its columns and descriptions."""
    with store.reader() as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "ORDER BY table_name, column_index"
        ).fetchall()
    columns: dict[str, list[Column]] = {}
    for table, name, dtype, comment in rows:
        columns.setdefault(table, []).append(Column(name, dtype, comment))
    ordered = [n for n in _PUBLIC_ORDER if n in columns] + sorted(set(columns) - set(_PUBLIC_ORDER))
    return [
        Relation(
            name,
            "view" if name in VIEWS else "table",
            DESCRIPTIONS.get(name, ""),
            tuple(columns[name]),
        )
        for name in ordered
    ]


@dataclass(frozen=True)
class StoreStatus:
    path: str
    size_bytes: int
    schema_version: int
    counts: dict[str, int]
    writers: list[dict[str, Any]]
    pending_spill_files: int

    @property
    def problems(self) -> list[str]:
        """Losses or drops anywhere in the pipeline: what `shardscope status` warns about."""
        out = []
        for w in self.writers:
            for key in ("lost_spans", "secondary_dropped_spans", "sdk_dropped_events",
                        "sdk_dropped_attributes", "spilled_spans"):
                if w.get(key):
                    out.append(f"writer {w['writer_id']} (pid {w['pid']}): {key} = {w[key]}")
        if self.pending_spill_files:
            out.append(
                f"{self.pending_spill_files} spill file(s) await ingestion by the next writer"
            )
        return out


def store_status(store: Store) -> StoreStatus:
    """Counts, schema version, per-writer pipeline counters and pending spills."""
    with store.reader() as con:
        version = stored_version(con)
        counts = {
            name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in ("spans", "span_events", "episodes", "runs")
        }
        latest = con.execute(
            "SELECT * FROM writer_stats QUALIFY row_number() OVER "
            "(PARTITION BY writer_id ORDER BY recorded_at DESC, spans_written DESC) = 1 "
            "ORDER BY started_at"
        )
        names = [d[0] for d in latest.description]
        writers = [dict(zip(names, row, strict=True)) for row in latest.fetchall()]
    spills = spill_dir(store)
    pending = len(list(spills.glob("*.spans.parquet"))) if spills.is_dir() else 0
    size = store.path.stat().st_size + _wal_size(store)
    return StoreStatus(str(store.path), size, version, counts, writers, pending)


def _wal_size(store: Store) -> int:
    wal = store.path.with_name(store.path.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0



# --- runs ---------------------------------------------------------------------------------
def completed_episode_keys(store: Store, run_id: str) -> set[str]:
    """Keys of the run's episodes already in the store (what ``--resume`` skips)."""
    if not store.exists():
        return set()
    with store.reader() as con:
        rows = con.execute(
            "SELECT DISTINCT episode_key FROM episodes WHERE run_id = ? AND episode_key IS NOT NULL",
            [run_id],
        ).fetchall()
    return {r[0] for r in rows}


def stored_baseline_keys(store: Store) -> set[str]:
    """Keys of every finished, un-ablated episode in the store, whatever its run (what an
    ablation run reuses instead of running its baselines again)."""
    if not store.exists():
        return set()
    with store.reader() as con:
        rows = con.execute(
            "SELECT DISTINCT episode_key FROM episodes WHERE episode_key IS NOT NULL "
            "AND ablation_shard IS NULL AND outcome IS NOT NULL AND outcome <> 'error'"
        ).fetchall()
    return {r[0] for r in rows}


def completed_episode_cells(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's stored episodes as matrix cells, each with the scaffold hash it ran under
    (what ``--resume`` compares with the current scaffolds' hashes)."""
    if not store.exists():
        return []
    with store.reader() as con:
        result = con.execute(
            "SELECT DISTINCT suite, task_id, scaffold, scaffold_hash, model, seed, ablation_shard, "
            "ablation_mode FROM episodes WHERE run_id = ? AND episode_key IS NOT NULL", [run_id])
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def stored_baseline_cells(store: Store) -> list[dict[str, Any]]:
    """Every finished, un-ablated episode in the store as a matrix cell with its scaffold hash
    (the baselines an ablation run could reuse, whatever the hash)."""
    if not store.exists():
        return []
    with store.reader() as con:
        result = con.execute(
            "SELECT DISTINCT suite, task_id, scaffold, scaffold_hash, model, seed, ablation_shard, "
            "ablation_mode FROM episodes WHERE episode_key IS NOT NULL AND ablation_shard IS NULL "
            "AND outcome IS NOT NULL AND outcome <> 'error'")
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def run_info(store: Store, run_id: str | None = None) -> dict[str, Any] | None:
    """One row of the ``runs`` view (the latest run when ``run_id`` is None), or None."""
    with store.reader() as con:
        where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        result = con.execute(
            f"SELECT run_id, name, status, planned_episodes, completed_episodes, "
            f"CAST(config AS VARCHAR) AS config, started_at FROM runs {where} "
            "ORDER BY started_at DESC LIMIT 1",
            params,
        )
        names = [d[0] for d in result.description]
        row = result.fetchone()
    return dict(zip(names, row, strict=True)) if row else None


# The success rate's standard error is clustered by task (CR1), exactly as the app computes
# it (tracer.explore.clustered_se): seeds of one task are not independent draws. With fewer
# than two tasks it falls back to the binomial sqrt(p(1-p)/(n-1)).
SUMMARY_SQL = """
WITH eps AS (
    SELECT * FROM episodes WHERE run_id = ? AND ablation_shard IS NULL),
tasks AS (
    SELECT model, scaffold, suite, task_id, count(*) AS n,
           count(*) FILTER (WHERE outcome = 'success') AS s
    FROM eps GROUP BY ALL),
groups AS (
    SELECT model, scaffold, sum(n) AS n, sum(s) / sum(n) AS p, count(*) AS clusters
    FROM tasks GROUP BY ALL),
se AS (
    SELECT g.model, g.scaffold, any_value(g.clusters) AS tasks,
           CASE WHEN any_value(g.clusters) < 2
                THEN sqrt(any_value(g.p) * (1 - any_value(g.p)) / greatest(any_value(g.n) - 1, 1))
                ELSE sqrt(any_value(g.clusters) / (any_value(g.clusters) - 1)
                          * sum(pow(t.s - t.n * g.p, 2))) / any_value(g.n) END AS success_se
    FROM groups g JOIN tasks t
      ON t.model IS NOT DISTINCT FROM g.model AND t.scaffold IS NOT DISTINCT FROM g.scaffold
    GROUP BY g.model, g.scaffold)
SELECT e.model, e.scaffold,
       count(*) AS episodes,
       any_value(se.tasks) AS tasks,
       avg(CASE WHEN outcome = 'success' THEN 1.0 ELSE 0.0 END) AS success_rate,
       any_value(se.success_se) AS success_se,
       avg(score) AS mean_score,
       avg(steps) AS mean_steps,
       sum(input_tokens + output_tokens) AS tokens,
       sum(cost_usd) AS cost_usd,
       avg(duration_s) AS mean_seconds,
       count(*) FILTER (WHERE outcome = 'protocol_error') AS protocol_errors,
       count(*) FILTER (WHERE outcome = 'budget_exhausted') AS budget_exhausted,
       count(*) FILTER (WHERE outcome = 'error') AS errors
FROM eps e JOIN se
  ON se.model IS NOT DISTINCT FROM e.model AND se.scaffold IS NOT DISTINCT FROM e.scaffold
GROUP BY e.model, e.scaffold
ORDER BY e.model, e.scaffold
"""


def run_summary(store: Store, run_id: str) -> Any:
    """Per model x scaffold: success rate (+ standard error clustered by task, as in the
    app), score, steps, tokens, cost, time."""
    return read_frame(store, SUMMARY_SQL, [run_id])


# Spans of a run's attempts that never became an episode and were never marked abandoned:
# left behind by a process that died mid-episode (SIGKILL, a crash, a power cut).
ORPHANS_SQL = """
SELECT DISTINCT episode_id FROM spans
WHERE run_id = ? AND episode_id IS NOT NULL
  AND span_type NOT IN ('episode', 'abandoned_episode', 'run', 'run_start')
  AND episode_id NOT IN (
      SELECT episode_id FROM spans
      WHERE span_type IN ('episode', 'abandoned_episode') AND episode_id IS NOT NULL)
ORDER BY episode_id
"""


def orphan_episode_ids(store: Store, run_id: str) -> list[str]:
    """Episode ids of ``run_id`` with stored spans but neither an episode nor an abandoned
    marker: what ``--resume`` marks abandoned before it runs those tasks again."""
    if not store.exists():
        return []
    with store.reader() as con:
        return [r[0] for r in con.execute(ORPHANS_SQL, [run_id]).fetchall()]
