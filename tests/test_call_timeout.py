"""The per-call timeout (issue 17, item 7): a setting, scaled with the call's max_tokens, and
a timeout error that says which limit ended the call and how to raise it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shardscope.config.errors import ConfigError
from shardscope.config.settings import Settings, load_settings
from shardscope.scaffolds.backends.errors import CallTimeoutError
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import CallTimeout, RetryPolicy, TracedModel
from shardscope.scaffolds.types import GenerationConfig, Message
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store


def test_the_limit_grows_with_max_tokens() -> None:
    limit = CallTimeout()
    assert limit.seconds(256) == 120 + 256 * 0.25 == 184
    assert limit.seconds(1024) > limit.seconds(256)


def test_call_timeout_settings_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("", encoding="utf-8")
    env = {"SHARDSCOPE_CALL_TIMEOUT": "30", "SHARDSCOPE_CALL_TIMEOUT_PER_TOKEN": "1.5",
           "SHARDSCOPE_CONFIG": str(tmp_path / "empty.toml")}
    settings = load_settings(env)
    assert (settings.call_timeout, settings.call_timeout_per_token) == (30.0, 1.5)
    assert settings.source.get("call_timeout") is not None
    with pytest.raises(ConfigError, match="call_timeout must be > 0"):
        Settings(call_timeout=0)


def test_a_timed_out_call_says_which_limit_ended_it(db_path: Path) -> None:
    tracing = setup_tracing(Settings(db=db_path), strict=True)
    slow = ScriptedBackend(model="slow", responses=[Scripted(text="late", delay_s=30.0)])
    model = TracedModel(slow, tracing, retry=RetryPolicy(max_attempts=1),
                        call_timeout=CallTimeout(base_s=0.05, per_token_s=0.001))
    with pytest.raises(CallTimeoutError) as caught:
        asyncio.run(model.generate([Message("user", "hi")], config=GenerationConfig(max_tokens=50)))
    message = str(caught.value)
    assert "within 0.1 s" in message
    assert "call_timeout 0.05 s + 50 max tokens x call_timeout_per_token 0.001 s" in message
    assert "SHARDSCOPE_CALL_TIMEOUT" in message
    tracing.shutdown()
    stored = read_frame(Store(db_path), "SELECT status_message FROM llm_calls").status_message[0]
    assert "call_timeout_per_token" in stored
