"""Shared fixtures: a real DuckDB store in a temp dir and a real OpenTelemetry pipeline.

Every test runs isolated from the developer's machine: ``HOME`` and the XDG directories point
into a temp dir, the working directory is a fresh temp dir, and ``SHARDSCOPE_*`` / ``OTEL_*``
variables from the developer's shell are removed (only the ones set below stay).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Exporter failures are logged and counted in production; under tests they must surface.
os.environ["SHARDSCOPE_STRICT_TRACING"] = "1"
# LiteLLM must never fetch its price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Assembled GGUF weights (491 MB for Qwen) are rebuilt from their packages when missing: keep
# them across tests and sessions, outside HOME (which is a fresh temp dir in every test).
os.environ["SHARDSCOPE_MODEL_CACHE"] = str(
    Path(tempfile.gettempdir()) / f"shardscope-test-models-{os.getuid()}"
)
DELIBERATE = frozenset({"SHARDSCOPE_STRICT_TRACING", "SHARDSCOPE_MODEL_CACHE"})
# The developer's own HOME, kept only so that a test can prove nothing is read from it.
REAL_HOME = os.environ.get("HOME", "")

pytest_plugins = ["tests.servers.fixtures", "tests.ui_fixtures", "tests.analysis_fixtures",
                  "tests.demo_fixtures"]


def _isolate(monkeypatch: pytest.MonkeyPatch, home: Path, cache: Path) -> None:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))  # caches only: shared by the session
    for name in list(os.environ):
        if name.startswith(("SHARDSCOPE_", "OTEL_")) and name not in DELIBERATE:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _isolated_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Session fixtures (stores, servers) already see a temp HOME and a temp working dir."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, tmp_path_factory.mktemp("session-home"), cache)
        monkeypatch.chdir(tmp_path_factory.mktemp("session-cwd"))
        yield cache


@pytest.fixture(autouse=True)
def _isolated_test(_isolated_session: Path, tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test: its own empty HOME and working directory, no developer settings."""
    _isolate(monkeypatch, tmp_path_factory.mktemp("home"), _isolated_session)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@pytest.fixture
def tracing(db_path: Path) -> Iterator[TracingSession]:  # noqa: F821
    from shardscope.config.settings import Settings
    from shardscope.tracer.setup import setup_tracing

    session = setup_tracing(Settings(db=db_path, flush_interval=0.1), strict=True)
    yield session
    session.shutdown()
