"""Likelihood attribution's reads and its table.

``recorded_calls`` reads the LLM calls of baseline (not ablated) episodes with the input
exactly as sent (``raw_request.prompt``, the rendered prompt of in-process models) and the
output exactly as produced (``raw_response.text``). ``attributions`` is a table written by
``shardscope attribute`` (not a view over spans): one row per call x shard x mode, documented
in docs/attribution.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from shardscope.tracer.queries.frames import Source, frame_of, read_frame
from shardscope.tracer.store import Store

ATTRIBUTIONS_DDL = """
CREATE TABLE IF NOT EXISTS attributions (
    run_id VARCHAR, episode_id VARCHAR, span_id VARCHAR, step_index BIGINT, model VARCHAR,
    suite VARCHAR, task_id VARCHAR, shard VARCHAR, shard_kind VARCHAR, mode VARCHAR,
    status VARCHAR, occurrences INTEGER, output_tokens INTEGER,
    base_logp DOUBLE, ablated_logp DOUBLE, delta_logp DOUBLE,
    base_action_logp DOUBLE, ablated_action_logp DOUBLE, delta_action_logp DOUBLE,
    evaluated_tokens BIGINT, detail VARCHAR, scored_at TIMESTAMPTZ DEFAULT current_timestamp,
    tokens VARCHAR[], token_deltas DOUBLE[]
)"""
# A table written before per-token deltas were kept gains their columns (NULL in old rows).
TOKEN_COLUMNS_DDL = ("ALTER TABLE attributions ADD COLUMN IF NOT EXISTS tokens VARCHAR[]",
                     "ALTER TABLE attributions ADD COLUMN IF NOT EXISTS token_deltas DOUBLE[]")
COLUMNS = ("run_id", "episode_id", "span_id", "step_index", "model", "suite", "task_id",
           "shard", "shard_kind", "mode", "status", "occurrences", "output_tokens",
           "base_logp", "ablated_logp", "delta_logp", "base_action_logp",
           "ablated_action_logp", "delta_action_logp", "evaluated_tokens", "detail")
TOKEN_COLUMNS = ("tokens", "token_deltas")  # the output's tokens, each one's Δ log p


def recorded_calls(store: Store, run_ids: Sequence[str] = (), models: Sequence[str] = ()
                   ) -> pd.DataFrame:
    """Baseline episodes' LLM calls: ids, model, provider, suite, task, prompt and output
    (NULL when the backend records no rendered prompt, or content capture was off), and the
    chat request's messages as JSON (HTTP backends, whose prompt the server renders)."""
    where, params = ["e.ablation_shard IS NULL", "c.status_code <> 'ERROR'"], []
    if run_ids:
        where.append(f"e.run_id IN ({', '.join('?' * len(run_ids))})")
        params += list(run_ids)
    if models:
        where.append(f"c.model IN ({', '.join('?' * len(models))})")
        params += list(models)
    return read_frame(store, f"""
        SELECT e.run_id, c.episode_id, c.span_id, c.step_index, c.model, c.provider, e.scaffold,
               e.suite, e.task_id,
               c.raw_request->>'$.prompt' AS prompt,
               coalesce(c.raw_response->>'$.text',
                        c.raw_response->>'$.choices[0].message.content') AS output,
               c.raw_request->>'$.messages' AS request_messages,
               c.input_messages IS NOT NULL AS has_messages
        FROM llm_calls c JOIN episodes e USING (episode_id)
        WHERE {' AND '.join(where)}
        ORDER BY c.model, e.suite, e.task_id, c.episode_id, c.step_index, c.started_at""", params)


def tool_results(store: Store, episode_ids: Sequence[str]) -> pd.DataFrame:
    """episode_id, tool_name, result of the tool calls of these episodes."""
    if not episode_ids:
        return pd.DataFrame(columns=["episode_id", "tool_name", "result"])
    return read_frame(store, f"""
        SELECT episode_id, tool_name, result FROM tool_calls
        WHERE episode_id IN ({', '.join('?' * len(episode_ids))}) AND result IS NOT NULL""",
        list(episode_ids))


def write_attributions(store: Store, rows: pd.DataFrame) -> int:
    """Write ``rows`` in one transaction, replacing any stored row with the same call x shard
    x mode (``span_id``, ``shard``, ``mode``); the number written. ``shardscope attribute``
    calls it once per episode, so a killed run keeps every episode it finished."""
    if rows.empty:
        return 0
    frame = rows.reindex(columns=[*COLUMNS, *TOKEN_COLUMNS])  # per-token columns are optional
    frame[list(TOKEN_COLUMNS)] = frame[list(TOKEN_COLUMNS)].astype(object)
    written = [*COLUMNS, *TOKEN_COLUMNS]
    with store.writer() as con:
        con.execute(ATTRIBUTIONS_DDL)
        for ddl in TOKEN_COLUMNS_DDL:
            con.execute(ddl)
        con.register("new_attributions", frame)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM attributions a WHERE EXISTS (SELECT 1 FROM new_attributions n "
                        "WHERE n.span_id = a.span_id AND n.shard = a.shard AND n.mode = a.mode)")
            con.execute(f"INSERT INTO attributions ({', '.join(written)}) "
                        f"SELECT {', '.join(written)} FROM new_attributions")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("new_attributions")
    return len(frame)


def read_attributions(store: Store, run_ids: Sequence[str] = (),
                      episode_ids: Sequence[str] = ()) -> pd.DataFrame:
    """The stored attribution rows of these runs and episodes (all when none is given;
    empty when ``shardscope attribute`` never ran)."""
    exists = read_frame(store, "SELECT count(*) AS n FROM information_schema.tables "
                               "WHERE table_name = 'attributions'")
    if not int(exists.n.iloc[0]):
        return pd.DataFrame(columns=list(COLUMNS))
    where, params = ["TRUE"], []
    for column, values in (("run_id", run_ids), ("episode_id", episode_ids)):
        if values:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += list(values)
    return read_frame(store, f"SELECT * FROM attributions WHERE {' AND '.join(where)}", params)


def stored_attributions(store: Source, suites: Sequence[str] = (), run_ids: Sequence[str] = ()
                        ) -> pd.DataFrame:
    """The ``attributions`` rows (with their episode's scaffold) of these suites and runs;
    empty when ``shardscope attribute`` never ran on the store. On a store, its reads share
    one connection (each opening cost ~40 ms on the 1M-span bench store)."""
    if isinstance(store, Store):
        with store.reader() as con:
            return stored_attributions(con, suites, run_ids)
    exists = frame_of(store, "SELECT count(*) AS n FROM duckdb_tables() "
                             "WHERE table_name = 'attributions'")
    if not int(exists.n.iloc[0]):
        return pd.DataFrame(columns=[*COLUMNS, *TOKEN_COLUMNS, "scaffold"])
    where, params = ["TRUE"], []
    for column, values in (("a.suite", suites), ("a.run_id", run_ids)):
        if values:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += list(values)
    # The per-token lists stay in the table (see token_deltas): a page needs one step's.
    return frame_of(store, f"""
        SELECT a.* EXCLUDE (tokens, token_deltas), e.scaffold
        FROM ({_with_token_columns(store)}) a LEFT JOIN episodes e USING (episode_id)
        WHERE {' AND '.join(where)}
        ORDER BY a.model, a.suite, a.task_id, a.episode_id, a.step_index""", params)


def _with_token_columns(store: Source) -> str:
    """The attributions table, with NULL per-token columns where an older writer made it."""
    have = set(frame_of(store, "SELECT column_name FROM information_schema.columns "
                               "WHERE table_name = 'attributions'").column_name)
    missing = [f"NULL::{kind} AS {name}" for name, kind in
               (("tokens", "VARCHAR[]"), ("token_deltas", "DOUBLE[]")) if name not in have]
    return "SELECT *" + "".join(f", {m}" for m in missing) + " FROM attributions"


def token_deltas(store: Store, span_id: str, shard: str, mode: str) -> pd.DataFrame:
    """One scored step's output tokens in order (index, token, delta: log p with the shard
    minus without it); empty when the row kept no per-token deltas (an older
    ``shardscope attribute``, or a scorer without token texts)."""
    rows = read_frame(store, f"""
        SELECT tokens, token_deltas FROM ({_with_token_columns(store)})
        WHERE span_id = ? AND shard = ? AND mode = ? AND token_deltas IS NOT NULL""",
        [span_id, shard, mode])
    if rows.empty:
        return pd.DataFrame(columns=["index", "token", "delta"])
    tokens, deltas = list(rows.tokens.iloc[0]), list(rows.token_deltas.iloc[0])
    return pd.DataFrame({"index": range(len(deltas)), "token": tokens, "delta": deltas})
