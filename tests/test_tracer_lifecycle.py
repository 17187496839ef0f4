"""Tracing over a program's life: spans are visible while it runs, survive an exit without
``shutdown()``, and reach the console exporter as well as the store.

Each traced program is a real process (tests/helpers/lifecycle_writer.py) with the default
settings: only the store path and the exporters are given, so the flush interval is the
README's 0.5 s. (The OTLP exporter is covered by tests/test_otlp_export.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shardscope.config.errors import StoreNotFoundError
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store
from tests.helpers.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
HELPER = "tests.helpers.lifecycle_writer"


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment minus any SHARDSCOPE_* setting, with an empty config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
    config = tmp_path / "empty.toml"
    config.write_text("", encoding="utf-8")
    env.update(SHARDSCOPE_CONFIG=str(config), SHARDSCOPE_STRICT_TRACING="1", PYTHONPATH=str(ROOT))
    return env


def _helper(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", HELPER, "--db", str(db), *args]


def _span_names(db: Path, prefix: str) -> list[str]:
    frame = read_frame(Store(db), "SELECT name FROM spans WHERE name LIKE ? ORDER BY name",
                       [f"{prefix}-%"])
    return list(frame["name"])


def _count(store: Store, name: str) -> int:
    try:
        return int(read_frame(store, "SELECT count(*) AS n FROM spans WHERE name = ?", [name])["n"][0])
    except StoreNotFoundError:  # the writer has not created the store yet
        return 0


def test_a_live_run_is_visible_without_any_flush(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    writer = subprocess.Popen(
        _helper(db, "--spans", "1", "--name", "live", "--end", "wait"),
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = writer.stderr.readline()
        assert line.strip() == "ended 1", line + writer.stderr.read()
        store = Store(db)
        # How soon is the README's business (flush interval 0.5 s); here: it does arrive.
        wait_until(lambda: _count(store, "live-0") or writer.poll() is not None,
                   "the ended span to become visible to a reader")
        # The writer never flushes and is still running: only the periodic flush can have
        # written the span.
        assert writer.poll() is None, writer.stderr.read()
        assert _count(store, "live-0") == 1
    finally:
        writer.kill()
        writer.wait(10)


@pytest.mark.parametrize("end, returncode", [("return", 0), ("raise", 1)])
def test_exit_without_shutdown_keeps_every_span(tmp_path: Path, end: str, returncode: int) -> None:
    db = tmp_path / "exit.duckdb"
    spans = 6_000  # more than one wake-up batch (5,000 spans)
    done = subprocess.run(
        _helper(db, "--spans", str(spans), "--name", "exit", "--end", end),
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == returncode, done.stderr
    if end == "raise":
        assert "RuntimeError: the traced program crashed" in done.stderr
    names = _span_names(db, "exit")
    assert len(names) == spans and len(set(names)) == spans
    stats = read_frame(
        Store(db),
        "SELECT max(spans_written) AS written, max(lost_spans) AS lost, "
        "max(spilled_spans) AS spilled, count(DISTINCT writer_id) AS writers FROM writer_stats",
    ).iloc[0]
    assert (stats["written"], stats["lost"], stats["spilled"], stats["writers"]) == (spans, 0, 0, 1)


def _json_objects(text: str) -> list[dict]:
    """The JSON documents printed one after another (ConsoleSpanExporter's format)."""
    decoder, objects, pos = json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return objects
        obj, pos = decoder.raw_decode(text, pos)
        objects.append(obj)


def test_console_exporter_prints_spans_and_the_store_still_gets_them(tmp_path: Path) -> None:
    db = tmp_path / "console.duckdb"
    done = subprocess.run(
        _helper(db, "--spans", "3", "--name", "console", "--exporters", "duckdb,console"),
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    printed = _json_objects(done.stdout)
    assert sorted(s["name"] for s in printed) == ["console-0", "console-1", "console-2"]
    assert {s["name"]: s["attributes"]["probe.seq"] for s in printed} == {
        "console-0": 0, "console-1": 1, "console-2": 2,
    }
    assert all(s["attributes"]["shardscope.span.type"] == "span" for s in printed)
    stored = read_frame(Store(db), "SELECT name, span_id, trace_id FROM spans ORDER BY name")
    assert list(stored["name"]) == ["console-0", "console-1", "console-2"]
    # The same spans, not look-alikes: the console's ids are the store's, in 0x-hex.
    console_ids = {(s["name"], s["context"]["span_id"], s["context"]["trace_id"]) for s in printed}
    store_ids = {(r.name, f"0x{r.span_id}", f"0x{r.trace_id}") for r in stored.itertuples()}
    assert console_ids == store_ids
