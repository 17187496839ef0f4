"""Small helpers the backend tests share: a catalog file for loopback servers, a recording
``sleep`` for retries, and reading the store back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shardscope.config.catalog import Catalog
from shardscope.scaffolds.backends.registry import load_catalog
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.store import Store


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` in TracedModel: records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fake_catalog(tmp_path: Path, base_url: str, **extra_entries: str) -> Catalog:
    """The shipped catalog plus entries of every hosted backend pointing at ``base_url``."""
    text = f"""
[models.fake-openai]
backend = "openai"
model = "gpt-fake"
base_url = "{base_url}/v1"
price_input_per_million = 1.0
price_output_per_million = 2.0

[models.fake-anthropic]
backend = "anthropic"
model = "claude-fake"
base_url = "{base_url}"
price_input_per_million = 3.0
price_output_per_million = 15.0

[models.fake-litellm]
backend = "litellm"
model = "openai/gpt-fake"
base_url = "{base_url}/v1"
api_key_env = "OPENAI_API_KEY"
"""
    for model_id, body in extra_entries.items():
        text += f"\n[models.{model_id}]\n{body}\n"
    path = tmp_path / "models.toml"
    path.write_text(text)
    return load_catalog(path)


def rows(db_path: Path, sql: str) -> list[dict[str, Any]]:
    """Query the store; every row as a dict (SQL NULL as None, not NaN)."""
    frame = read_frame(Store(db_path), sql)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
