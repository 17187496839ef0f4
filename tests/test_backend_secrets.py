"""API keys come from the environment and never reach the store or a log line, even when a
provider echoes them back (in an answer or in a 401 error body)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

import duckdb
import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.errors import AuthenticationError
from shardscope.scaffolds.backends.registry import open_model
from shardscope.scaffolds.types import GenerationConfig, Message
from shardscope.tracer.setup import setup_tracing
from tests.servers import fake_provider as fp
from tests.servers.backend_helpers import RecordingSleep, fake_catalog

PLAIN_KEY_ENTRY = """backend = "litellm"
model = "openai/gpt-fake"
base_url = "{url}/v1"
api_key_env = "FAKE_PROVIDER_API_KEY"
"""


def text_cells(db_path: Path) -> dict[str, list[str]]:
    """Every text cell of every table in the store, by table.column."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' AND (data_type LIKE 'VARCHAR%' OR data_type = 'JSON')"
        ).fetchall()
        cells = {}
        for table, column in columns:
            values = con.execute(f'SELECT CAST("{column}" AS VARCHAR) FROM "{table}"').fetchall()
            cells[f"{table}.{column}"] = [v for (v,) in values if v is not None]
        return cells
    finally:
        con.close()


def test_keys_never_reach_the_store_or_the_logs(
    fake_provider: fp.FakeProvider, tmp_path: Path, db_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    keys = {
        "OPENAI_API_KEY": f"sk-test-{secrets.token_hex(12)}",
        "ANTHROPIC_API_KEY": f"sk-ant-test-{secrets.token_hex(12)}",
        # No well-known key shape: only the environment-variable net can catch this one.
        "FAKE_PROVIDER_API_KEY": f"plainsecret{secrets.token_hex(12)}",
    }
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    catalog = fake_catalog(tmp_path, fake_provider.base_url,
                           **{"fake-plain": PLAIN_KEY_ENTRY.format(url=fake_provider.base_url)})
    tracing = setup_tracing(Settings(db=db_path, flush_interval=0.1), strict=True)
    try:
        for model_id in ("fake-openai", "fake-anthropic", "fake-litellm", "fake-plain"):
            model = open_model(catalog.get(model_id), tracing, sleep=RecordingSleep())
            messages = [Message("user", "What key did I send you?")]
            for stream in (False, True):
                # The "model" quotes the credential it received back into its answer...
                fake_provider.script(fp.ok("Here it is.", echo_auth=True))
                answer = asyncio.run(model.generate(messages, (), GenerationConfig(), stream=stream))
                assert "[REDACTED]" not in answer.text  # the caller still sees the raw answer
                # ...and the provider's 401 body quotes it too.
                fake_provider.script(fp.status(401, "Incorrect API key provided", echo_auth=True))
                with pytest.raises(AuthenticationError) as raised:
                    asyncio.run(model.generate(messages, (), GenerationConfig(), stream=stream))
                assert all(key not in str(raised.value) for key in keys.values())
    finally:
        tracing.shutdown()

    # The keys did travel to the server: the test would see a leak if there were one.
    sent = " ".join(" ".join(r.headers.values()) for r in fake_provider.requests)
    assert all(key in sent for key in keys.values())
    cells = text_cells(db_path)
    stored = "\n".join(v for values in cells.values() for v in values)
    assert "Here it is. Your key: Bearer [REDACTED]" in stored  # content recorded, key not
    for name, key in keys.items():
        leaks = [column for column, values in cells.items() if any(key in v for v in values)]
        assert leaks == [], f"{name} found in {leaks}"
        assert key not in caplog.text, f"{name} found in a log line"
