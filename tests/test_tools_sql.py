"""The sql tool: read-only, no external access, a row limit and a timeout."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from shardscope.scaffolds.tools import ToolContext, default_registry


@pytest.fixture
def sql(tmp_path: Path) -> Iterator[Any]:
    database = tmp_path / "data.duckdb"
    con = duckdb.connect(str(database))
    con.execute(
        "CREATE TABLE farmers AS SELECT range AS id, 'farmer ' || range AS name, "
        "range * 3 AS acres FROM range(250)"
    )
    con.close()
    tool = default_registry().get("sql")

    def run(query: str, **limits):
        ctx = ToolContext(workdir=tmp_path, dataset_path=database, **{"timeout_s": 1.0, **limits})
        return tool.run({"query": query}, ctx)

    run.database = database  # type: ignore[attr-defined]
    run.tool = tool  # type: ignore[attr-defined]
    yield run
    tool.close()


def test_select_returns_a_readable_table(sql) -> None:
    result = sql("SELECT id, name FROM farmers WHERE id < 2 ORDER BY id")
    assert result.ok
    assert result.output == "id | name\n0 | farmer 0\n1 | farmer 1\n(2 rows)"


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO farmers VALUES (999, 'x', 1)",
        "UPDATE farmers SET acres = 0",
        "DELETE FROM farmers",
        "DROP TABLE farmers",
        "CREATE TABLE t (i INTEGER)",
        "COPY farmers TO 'stolen.csv'",
        "ATTACH 'other.duckdb' AS other",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SELECT 1; DELETE FROM farmers",
    ],
)
def test_writes_and_escapes_are_refused(sql, statement: str) -> None:
    result = sql(statement)
    assert not result.ok
    assert result.error_type == "not_read_only"
    assert sql("SELECT count(*) FROM farmers").output.splitlines()[1] == "250"


def test_files_outside_the_dataset_cannot_be_read(sql, tmp_path: Path) -> None:
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    result = sql(f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')")
    assert not result.ok
    assert "disabled" in (result.error_message or "")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO farmers VALUES (999, 'x', 1)",
        "COPY farmers TO 'stolen.csv'",
        "SET enable_external_access = true",
    ],
)
def test_the_connection_is_locked_even_past_the_statement_filter(
    sql, statement: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from shardscope.scaffolds.tools import sql as sql_module

    monkeypatch.setattr(sql_module, "_refusal", lambda query: None)
    result = sql(statement)
    assert not result.ok
    assert result.error_type == "not_read_only", result
    assert not (tmp_path / "stolen.csv").exists()
    assert sql("SELECT count(*) FROM farmers").output.splitlines()[1] == "250"


def test_runaway_query_is_interrupted(sql) -> None:
    # 10^14 rows: only the interrupt can end this query (a hang would hit pytest's timeout).
    result = sql(
        "SELECT sum(a.range * b.range) FROM range(100000000) a, range(1000000) b", timeout_s=0.5
    )
    assert not result.ok
    assert result.error_type == "timeout"
    assert "0.5 s" in (result.error_message or "")


def test_bad_sql_gives_a_readable_error(sql) -> None:
    syntax = sql("SELEC * FROM farmers")
    assert syntax.error_type == "sql_syntax_error" and "syntax error" in (
        syntax.error_message or ""
    )
    unknown = sql("SELECT * FROM herders")
    assert unknown.error_type == "sql_unknown_name"
    assert "Tables in this dataset: farmers" in (unknown.error_message or "")
    column = sql("SELECT size FROM farmers")
    assert column.error_type == "sql_unknown_name" and "size" in (column.error_message or "")


def test_rows_beyond_the_limit_are_cut_with_a_note(sql) -> None:
    result = sql("SELECT id FROM farmers ORDER BY id", max_rows=10)
    assert result.ok and result.truncated
    lines = result.output.splitlines()
    assert lines[1:11] == [str(i) for i in range(10)]
    assert "first 10 rows" in lines[-1]


def test_no_dataset_is_reported(tmp_path: Path) -> None:
    result = default_registry().get("sql").run({"query": "SELECT 1"}, ToolContext(workdir=tmp_path))
    assert not result.ok and result.error_type == "no_dataset"


_MEASURE = """
import json, resource, sys
from pathlib import Path
import duckdb
from shardscope.scaffolds.tools import ToolContext, default_registry
database = Path(sys.argv[1])
duckdb.connect(str(database)).execute("CREATE TABLE t AS SELECT range AS i FROM range(10)").close()
ctx = ToolContext(workdir=database.parent, dataset_path=database, memory_mb=512, timeout_s=60)
tool = default_registry().get("sql")
result = tool.run({"query": sys.argv[2]}, ctx)
tool.close()  # its worker ends and is waited for: RUSAGE_CHILDREN then counts it
print(json.dumps({
    "ok": result.ok, "error_type": result.error_type, "output": result.output,
    # VmHWM, not RUSAGE_SELF: Linux folds the pre-exec image's peak into ru_maxrss across
    # execve, so a process forked from a big pytest would report pytest's size.
    "self_mb": next(int(line.split()[1]) for line in open("/proc/self/status")
                    if line.startswith("VmHWM:")) / 1024,
    "query_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def _measured(tmp_path: Path, query: str) -> dict:
    """Run the sql tool in a fresh process; its peak RSS and its query child's, in MB."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path / "data.duckdb"), query],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_huge_value_is_stopped_at_the_memory_limit(tmp_path: Path) -> None:
    # 2.9 GB in the run process before (DuckDB's memory_limit does not cover string results)
    measured = _measured(tmp_path, "SELECT length(repeat('x', 1500000000))")
    assert measured["error_type"] == "memory_limit", measured
    assert measured["self_mb"] < 512, measured
    assert measured["query_mb"] < 512 + 256, measured


def test_a_large_sort_still_runs_under_the_limit(tmp_path: Path) -> None:
    measured = _measured(
        tmp_path,
        "SELECT count(*), max(x) FROM "
        "(SELECT a.range * b.range AS x FROM range(2000) a, range(2000) b ORDER BY x)",
    )
    assert measured["ok"], measured
    assert measured["output"].splitlines()[1] == "4000000 | 3996001"
    assert measured["query_mb"] < 512 + 256, measured


# --- the long-lived worker (one process answers many queries; replaced when it fails) --------
def _worker_pids(tool: Any) -> set[int]:
    return {w.pid for idle in tool.workers._idle.values() for w in idle}


def test_one_worker_answers_query_after_query(sql) -> None:
    answers = [sql(f"SELECT count(*) FROM farmers WHERE id < {n}").output.splitlines()[1]
               for n in (1, 10, 100, 250)]
    assert answers == ["1", "10", "100", "250"]
    assert sql.tool.workers.started == 1 and len(_worker_pids(sql.tool)) == 1


def test_a_worker_that_ran_out_of_memory_is_replaced(sql) -> None:
    assert sql("SELECT 1", memory_mb=256).ok
    (before,) = _worker_pids(sql.tool)
    huge = sql("SELECT length(repeat('x', 1500000000))", memory_mb=256, timeout_s=30)
    assert huge.error_type == "memory_limit", huge
    after = sql("SELECT count(*) FROM farmers", memory_mb=256, timeout_s=30)
    assert after.output.splitlines()[1] == "250"
    assert _worker_pids(sql.tool) != {before} and sql.tool.workers.started == 2


def test_a_killed_worker_is_a_clear_error_and_the_next_query_gets_a_new_one(sql) -> None:
    assert sql("SELECT 1").ok
    (pid,) = _worker_pids(sql.tool)
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    # 10^14 rows: the kill ends it, long before the 60 s limit
    crashed = sql("SELECT sum(a.range * b.range) FROM range(100000000) a, range(1000000) b",
                  timeout_s=60)
    assert crashed.error_type == "sql_error" and "query process failed" in (
        crashed.error_message or ""), crashed
    assert sql("SELECT count(*) FROM farmers").output.splitlines()[1] == "250"
    assert _worker_pids(sql.tool) != {pid} and sql.tool.workers.started == 2


def test_a_worker_that_stops_answering_is_killed_at_its_deadline(sql) -> None:
    assert sql("SELECT 1").ok
    (pid,) = _worker_pids(sql.tool)
    os.kill(pid, signal.SIGSTOP)  # no interrupt inside it can run: only the outside deadline
    hung = sql("SELECT 1", timeout_s=0.5)
    assert hung.error_type == "timeout", hung
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    assert sql("SELECT count(*) FROM farmers").output.splitlines()[1] == "250"


def test_concurrent_episodes_get_workers_of_their_own(sql) -> None:
    results: list[Any] = []
    slow = "SELECT count(*) FROM range(30000000) a WHERE a.range % 7 = 0"
    threads = [threading.Thread(target=lambda: results.append(sql(slow, timeout_s=60)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.output.splitlines()[1] for r in results] == ["4285715", "4285715"]
    assert sql.tool.workers.started == 2 and len(_worker_pids(sql.tool)) == 2
