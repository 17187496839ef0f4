"""The bad-input corpus: inputs a careless or hostile user gives the real CLI, each run as a
subprocess and classified by what the user sees (tests/test_bad_input.py writes the table
to docs/bad-input.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = '[models.echo]\nbackend = "scripted"\nmodel = "echo"\nresponses = ["42"]\n'
RUN = ("run", "-s", "arithmetic", "-m", "echo", "-a", "react-tools", "--limit", "1",
       "--no-progress")


@dataclass(frozen=True)
class Case:
    """One bad input: what is typed, and what must exist first (``setup`` gets a fresh dir
    and returns extra environment)."""

    label: str
    args: tuple[str, ...]
    setup: Callable[[Path], dict[str, str]] = lambda d: {}
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int | None  # None: still running after the timeout (a server that started)
    message: str

    @property
    def kind(self) -> str:
        if "Traceback" in self.message:
            return "traceback"
        if self.code in (0, None):
            return "silent"
        lines = [ln for ln in self.message.splitlines() if ln.strip()]
        return "clear" if len(lines) == 1 else "unclear"


def _store(d: Path) -> Path:
    from shardscope.tracer.store import Store

    path = d / "store.duckdb"
    with Store(path).writer():
        pass
    return path


def _with_store(edit: Callable[[Path], None]) -> Callable[[Path], dict[str, str]]:
    def setup(d: Path) -> dict[str, str]:
        path = _store(d)
        edit(path)
        return {"SHARDSCOPE_DB": str(path)}
    return setup


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _meta(value: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        con = duckdb.connect(str(path))
        con.execute("UPDATE shardscope_meta SET value = ? WHERE key = 'schema_version'", [value])
        con.close()
    return edit


def _plain_duckdb(d: Path) -> dict[str, str]:
    path = d / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers AS SELECT 1 AS id")
    con.close()
    return {"SHARDSCOPE_DB": str(path)}


def _text_store(d: Path) -> dict[str, str]:
    (d / "notes.duckdb").write_text("just some notes\n")
    return {"SHARDSCOPE_DB": str(d / "notes.duckdb")}


def _file(name: str, content: bytes, var: str) -> Callable[[Path], dict[str, str]]:
    def setup(d: Path) -> dict[str, str]:
        (d / name).write_bytes(content)
        return {var: str(d / name)}
    return setup


def _dir_db(d: Path) -> dict[str, str]:
    (d / "adir").mkdir()
    return {"SHARDSCOPE_DB": str(d / "adir")}


def _under_file_db(d: Path) -> dict[str, str]:
    (d / "afile").write_text("x")
    return {"SHARDSCOPE_DB": str(d / "afile" / "store.duckdb")}


def _config(text: str) -> Callable[[Path], dict[str, str]]:
    """A config file beside a real store: accepting the bad file would exit 0 (silent)."""
    def setup(d: Path) -> dict[str, str]:
        return {**STORE(d), **_file("shardscope.toml", text.encode(), "SHARDSCOPE_CONFIG")(d)}
    return setup


STORE = _with_store(lambda p: None)


def _truncated_eval(d: Path) -> dict[str, str]:
    """An Inspect .eval log cut short (a zip archive missing its end), beside a real store."""
    import zipfile

    whole = d / "whole.eval"
    with zipfile.ZipFile(whole, "w") as archive:
        archive.writestr("header.json", '{"version": 2, "status": "success"}' + " " * 4000)
        archive.writestr("samples/1_epoch_1.json", "{}" + " " * 4000)
    (d / "cut.eval").write_bytes(whole.read_bytes()[:3000])
    return STORE(d)


def _future_log(d: Path) -> dict[str, str]:
    (d / "future.json").write_text('{\n  "version": 99,\n  "status": "success",\n  "eval": {}\n}\n')
    return STORE(d)


BINARY = bytes(range(256)) * 4
CASES: tuple[Case, ...] = (
    Case("truncated store, `status`", ("status",), _with_store(_truncate)),
    Case("truncated store, `run`", RUN, _with_store(_truncate)),
    Case("schema version 'abc', `status`", ("status",), _with_store(_meta("abc"))),
    Case("schema version 'abc', `run`", RUN, _with_store(_meta("abc"))),
    Case("future schema version, `run`", RUN, _with_store(_meta("999"))),
    Case("text file as store, `run`", RUN, _text_store),
    Case("text file as store, `query`", ("query", "SELECT 1"), _text_store),
    Case("plain DuckDB file (not a shardscope store), `run`", RUN, _plain_duckdb),
    Case("plain DuckDB file, `status`", ("status",), _plain_duckdb),
    Case("`--db` a directory, `run`", RUN, _dir_db),
    Case("`--db` a directory, `status`", ("status",), _dir_db),
    Case("`--db` under a file, `run`", RUN, _under_file_db),
    Case("binary config file", ("status",), lambda d: {**STORE(d), **_file("c.toml", BINARY, "SHARDSCOPE_CONFIG")(d)}),
    Case("binary model catalog, `models`", ("models",),
         _file("m.toml", BINARY, "SHARDSCOPE_MODELS_FILE")),
    Case("binary model catalog, `run`", RUN, _file("m.toml", BINARY, "SHARDSCOPE_MODELS_FILE")),
    Case("stray config key", ("status",), _config("db = 'x.duckdb'\ncolour = 'blue'\n")),
    Case("nested config key", ("status",), _config("[shardscope]\n[shardscope.ui]\nport = 1\n")),
    Case("unknown top-level table in config", ("status",), _config("[other]\nx = 1\n")),
    Case("config value of the wrong type", ("status",), _config("lock_timeout = 'soon'\n")),
    Case("negative lock timeout", ("status",), STORE, env={"SHARDSCOPE_LOCK_TIMEOUT": "-1"}),
    Case("lock timeout NaN", ("status",), STORE, env={"SHARDSCOPE_LOCK_TIMEOUT": "nan"}),
    Case("unknown SHARDSCOPE_ variable", ("status",), STORE, env={"SHARDSCOPE_DBB": "x.duckdb"}),
    Case("SHARDSCOPE_UI_PORT=99999, `ui`", ("ui",), env={"SHARDSCOPE_UI_PORT": "99999"}),
    Case("SHARDSCOPE_UI_PORT=abc", ("status",), STORE, env={"SHARDSCOPE_UI_PORT": "abc"}),
    Case("`ui --port 0`", ("ui", "--port", "0")),
    Case("`collect --port 99999`", ("collect", "--port", "99999")),
    Case("`collect --port -1`", ("collect", "--port", "-1")),
    Case("`collect --grpc-port 70000`", ("collect", "--port", "0", "--grpc-port", "70000")),
    Case("`--seeds 10**12`", (*RUN, "--seeds", str(10**12))),
    Case("`--seeds 0`", (*RUN, "--seeds", "0")),
    Case("`--concurrency llama_cpp=-5`", (*RUN, "--concurrency", "scripted=-5")),
    Case("`--concurrency scripted=0`", (*RUN, "--concurrency", "scripted=0")),
    Case("`--concurrency scripted=10**9`", (*RUN, "--concurrency", f"scripted={10**9}")),
    Case("`--concurrency 4` (no provider)", (*RUN, "--concurrency", "4")),
    Case("`--concurrency nosuch=2`", (*RUN, "--concurrency", "nosuch=2")),
    Case("`--limit 0`", (*RUN[:-3], "--limit", "0")),
    Case("unknown suite", ("run", "-s", "nosuch", "-m", "echo", "-a", "react-tools")),
    Case("unknown model", ("run", "-s", "arithmetic", "-m", "nosuch", "-a", "react-tools")),
    Case("unknown scaffold", ("run", "-s", "arithmetic", "-m", "echo", "-a", "nosuch")),
    Case("bad --param", (*RUN, "--param", "react-tools.max_steps")),
    Case("`--resume` of an unknown run", ("run", "--resume", "nosuch")),
    Case("`--resume` with matrix options", ("run", "--resume", "latest", "--seeds", "2")),
    Case("`--retry-errors` without `--resume`", (*RUN, "--retry-errors")),
    Case("`query` with no SQL", ("query",)),
    Case("`query` a write", ("query", "DELETE FROM spans"), STORE),
    Case("`query` two statements", ("query", "SELECT 1; SELECT 2"), STORE),
    Case("`query --file` a directory", ("query", "--file", "."), STORE),
    Case("`query --file` binary", ("query", "--file", "b.sql"),
         lambda d: {**STORE(d),
                    **_file("b.sql", BINARY, "UNUSED")(d)}),
    Case("`compare --metric nosuch`", ("compare", "--metric", "nosuch"),
         STORE),
    Case("`compare --correction nosuch`", ("compare", "--correction", "nosuch"),
         STORE),
    Case("`models --catalog` a text file", ("models", "--catalog", "m.toml"),
         lambda d: _file("m.toml", b"not = [toml", "UNUSED")(d)),
    Case("SHARDSCOPE_EXPORTERS=nosuch", ("status",), STORE, env={"SHARDSCOPE_EXPORTERS": "nosuch"}),
    Case("SHARDSCOPE_CAPTURE_CONTENT=maybe", ("status",),
         env={"SHARDSCOPE_CAPTURE_CONTENT": "maybe"}),
    Case("SHARDSCOPE_CONFIG missing file", ("status",), env={"SHARDSCOPE_CONFIG": "/nonexistent"}),
    Case("SHARDSCOPE_SQL_TIMEOUT=0", ("status",), STORE, env={"SHARDSCOPE_SQL_TIMEOUT": "0"}),
    Case("truncated Inspect .eval log, `import inspect`", ("import", "inspect", "cut.eval"),
         _truncated_eval),
    Case("Inspect log of an unknown version, `import inspect`",
         ("import", "inspect", "future.json"), _future_log),
    Case("`import inspect` a missing log", ("import", "inspect", "nosuch.eval"), STORE),
    Case("`import inspect` a text file", ("import", "inspect", "notes.txt"),
         lambda d: {**STORE(d), **_file("notes.txt", b"hello", "UNUSED")(d)}),
    Case("`export --format csv`", ("export", "--format", "csv"), STORE),
    Case("`export --model nosuch`", ("export", "--model", "nosuch", "--no-progress"), STORE),
    Case("`export --out` a file", ("export", "--out", "afile", "--no-progress"),
         lambda d: {**STORE(d), **_file("afile", b"x", "UNUSED")(d)}),
)


def run_case(case: Case, workdir: Path, timeout: float = 60) -> Outcome:
    """Run one case in ``workdir`` (its cwd and HOME), as a user would."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SHARDSCOPE_") or k == "SHARDSCOPE_STRICT_TRACING"}
    (workdir / "catalog.toml").write_text(SCRIPTED)
    env.update(HOME=str(workdir), SHARDSCOPE_MODELS_FILE=str(workdir / "catalog.toml"),
               SHARDSCOPE_DB=str(workdir / "default.duckdb"))
    env.update(case.setup(workdir))
    env.update(case.env)
    env.pop("UNUSED", None)
    proc = subprocess.Popen([sys.executable, "-m", "shardscope", *case.args], cwd=workdir,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _out, err = proc.communicate(timeout=timeout)
        return Outcome(case, proc.returncode, err.strip())
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
        return Outcome(case, None, err.strip())
