"""Settings precedence (argument > environment > file > default) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardscope.config.errors import ConfigError
from shardscope.config.settings import Settings, load_settings


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shardscope.toml").write_text(
        '[shardscope]\ndb = "from-file.duckdb"\nflush_interval = 2.0\nui_port = 9000\n'
    )
    env = {"SHARDSCOPE_FLUSH_INTERVAL": "1.5", "SHARDSCOPE_CAPTURE_CONTENT": "off"}
    settings = load_settings(env, ui_port=9100)
    assert settings.db == Path("from-file.duckdb")  # file beats default
    assert settings.flush_interval == 1.5  # environment beats file
    assert settings.ui_port == 9100  # argument beats everything
    assert settings.capture_content is False
    assert settings.exporters == ("duckdb",)  # default
    assert settings.source["db"].endswith("shardscope.toml")
    assert settings.source["ui_port"] == "argument"


def test_defaults_without_any_source() -> None:
    assert load_settings({}) == Settings()  # cwd and HOME are empty temp dirs (conftest)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SHARDSCOPE_FLUSH_INTERVAL": "soon"}, "'flush_interval' = 'soon' is invalid"),
        ({"SHARDSCOPE_CAPTURE_CONTENT": "maybe"}, "expected true/false"),
        ({"SHARDSCOPE_EXPORTERS": "duckdb,kafka"}, "unknown exporter 'kafka'"),
        ({"SHARDSCOPE_EXPORTERS": "otlp"}, "needs an endpoint"),
        ({"SHARDSCOPE_FLUSH_INTERVAL": "0"}, "must be > 0"),
    ],
)
def test_bad_environment_values(env: dict[str, str], fragment: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load_settings(env)


def test_bad_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shardscope.toml").write_text("db = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({})
    (tmp_path / "shardscope.toml").write_text('dbb = "typo.duckdb"\n')
    with pytest.raises(ConfigError, match="unknown setting 'dbb'.*known settings: .*db"):
        load_settings({})


def test_config_path_from_environment_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        load_settings({"SHARDSCOPE_CONFIG": str(tmp_path / "missing.toml")})


def test_otel_standard_endpoint_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        {"SHARDSCOPE_EXPORTERS": "duckdb,otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    )
    assert settings.otlp_endpoint == "http://127.0.0.1:4318"
