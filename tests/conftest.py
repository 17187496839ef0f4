"""Shared fixtures: a real DuckDB store in a temp dir and a real OpenTelemetry pipeline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Exporter failures are logged and counted in production; under tests they must surface.
os.environ.setdefault("SHARDSCOPE_STRICT_TRACING", "1")
# LiteLLM must never fetch its price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["tests.servers.fixtures", "tests.ui_fixtures", "tests.analysis_fixtures",
                  "tests.demo_fixtures"]


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
