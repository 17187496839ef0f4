"""Settings, from one place, with one precedence: argument > environment > config file > default.

Environment variables are ``SHARDSCOPE_<FIELD>`` (e.g. ``SHARDSCOPE_DB``). The config file is
``$SHARDSCOPE_CONFIG`` if set, else ``./shardscope.toml``, else
``~/.config/shardscope/config.toml``; its keys are the field names, at top level or under a
``[shardscope]`` table. Secrets (API keys) are never settings: backends read them from the
environment directly and nothing here is ever written to the store.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from shardscope.config.errors import ConfigError

EXPORTER_NAMES = ("duckdb", "otlp", "console", "parquet")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MEMORY = re.compile(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Every tunable of shardscope. See docs/settings.md for what each one does."""

    db: Path = Path("shardscope.duckdb")
    exporters: tuple[str, ...] = ("duckdb",)
    otlp_endpoint: str | None = None
    capture_content: bool = True
    flush_interval: float = 0.5
    max_buffered_spans: int = 50_000
    lock_timeout: float = 120.0
    # One model call may take call_timeout + max_tokens x call_timeout_per_token seconds
    # (256 tokens: 184 s by default) before it fails with a timeout that says so.
    call_timeout: float = 120.0
    call_timeout_per_token: float = 0.25
    service_name: str = "shardscope"
    models_file: Path | None = None
    suites_dir: Path | None = None
    ui_host: str = "127.0.0.1"
    ui_port: int = 8501
    # User SQL (`shardscope query`, the SQL console): seconds before a query is interrupted,
    # and the DuckDB memory limit of its connection.
    sql_timeout: float = 30.0
    sql_memory_limit: str = "1GB"
    # The bearer token `shardscope collect` requires (the one secret that is a setting: the
    # collector itself needs it; it is never written to the store, and redacted from spans).
    collect_token: str | None = field(default=None, repr=False)
    # The Parquet lake the `parquet` exporter appends to (a directory; see docs/lake.md).
    lake: Path | None = None
    source: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        unknown = [e for e in self.exporters if e not in EXPORTER_NAMES]
        if unknown:
            raise ConfigError(
                f"unknown exporter {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(EXPORTER_NAMES)}"
            )
        if not (0 < self.call_timeout <= 86_400 and 0 <= self.call_timeout_per_token <= 3600):  # also NaN
            raise ConfigError(
                f"call_timeout must be > 0 and call_timeout_per_token >= 0 seconds, got "
                f"{self.call_timeout} and {self.call_timeout_per_token}")
        if not 0 <= self.lock_timeout <= 86_400:  # also NaN
            raise ConfigError(f"lock_timeout must be between 0 and 86400 seconds, got {self.lock_timeout}")
        if not 0 < self.flush_interval <= 3600:
            raise ConfigError(f"flush_interval must be > 0 and at most 3600 seconds, got {self.flush_interval}")
        if not 1 <= self.ui_port <= 65535:
            raise ConfigError(f"ui_port must be a port between 1 and 65535, got {self.ui_port}")
        if self.max_buffered_spans < 1:
            raise ConfigError(f"max_buffered_spans must be >= 1, got {self.max_buffered_spans}")
        if not 0 < self.sql_timeout <= 86_400:
            raise ConfigError(f"sql_timeout must be > 0 and at most 86400 seconds, got {self.sql_timeout}")
        if not _MEMORY.fullmatch(self.sql_memory_limit):
            raise ConfigError(
                f"sql_memory_limit must be a size such as 512MB or 2GB, got {self.sql_memory_limit!r}"
            )
        if "parquet" in self.exporters and self.lake is None:
            raise ConfigError(
                "exporter 'parquet' needs a lake directory: set SHARDSCOPE_LAKE (or `lake` in "
                "shardscope.toml), e.g. /shared/lake"
            )
        if "otlp" in self.exporters and not self.otlp_endpoint:
            raise ConfigError(
                "exporter 'otlp' needs an endpoint: set SHARDSCOPE_OTLP_ENDPOINT or "
                "OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318)"
            )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (values are coerced like any other source)."""
        coerced = {k: _coerce(k, v, "argument") for k, v in changes.items() if v is not None}
        source = {**self.source, **dict.fromkeys(coerced, "argument")}
        return dataclasses.replace(self, **coerced, source=source)


def _field_types() -> dict[str, Any]:
    return {f.name: f.type for f in fields(Settings) if f.name != "source"}


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Turn a raw value from the environment, a TOML file or an argument into the field's type."""
    kind = _field_types().get(name)
    if kind is None:
        known = ", ".join(sorted(_field_types()))
        raise ConfigError(f"{origin}: unknown setting {name!r}; known settings: {known}")
    try:
        return _convert(kind, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: setting {name!r} = {value!r} is invalid: {exc}") from None


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if "tuple" in kind:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(i).strip() for i in items if str(i).strip())
    if "Path" in kind:
        return Path(os.path.expanduser(str(value)))
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError("expected true/false, 1/0, yes/no or on/off")
    if kind == "float":
        return float(value)
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("expected a whole number")
        return int(value)
    return str(value)


def config_file_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file in effect, or None when there is none."""
    env = os.environ if environ is None else environ
    if env.get("SHARDSCOPE_CONFIG"):
        path = Path(os.path.expanduser(env["SHARDSCOPE_CONFIG"]))
        if not path.is_file():
            raise ConfigError(f"SHARDSCOPE_CONFIG points to {path}, which is not a file")
        return path
    for candidate in (Path("shardscope.toml"), Path.home() / ".config/shardscope/config.toml"):
        if candidate.is_file():
            return candidate
    return None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (the config file is UTF-8 TOML)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    table = data.get("shardscope", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [shardscope] must be a table of settings")
    others = sorted(k for k in data if k != "shardscope") if "shardscope" in data else []
    if others:
        raise ConfigError(f"{path}: only [shardscope] settings belong here, found "
                          f"{', '.join(map(repr, others))}; see docs/settings.md")
    nested = sorted(k for k, v in table.items() if isinstance(v, dict))
    if nested:
        raise ConfigError(f"{path}: settings are plain keys, not tables: [{nested[0]}] is not a "
                          "setting; see docs/settings.md for the known ones")
    return dict(table)


# SHARDSCOPE_* variables that are not settings but are read elsewhere.
OTHER_VARIABLES = frozenset({"SHARDSCOPE_CONFIG", "SHARDSCOPE_STRICT_TRACING",
                             "SHARDSCOPE_MODEL_CACHE"})


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    known = {f"SHARDSCOPE_{name.upper()}" for name in _field_types()} | OTHER_VARIABLES
    unknown = sorted(k for k in env if k.startswith("SHARDSCOPE_") and k not in known)
    if unknown:
        raise ConfigError(f"environment: unknown variable {unknown[0]}; known: "
                          f"{', '.join(sorted(known))} (unset it, or fix its name)")
    values: dict[str, Any] = {}
    for name in _field_types():
        key = f"SHARDSCOPE_{name.upper()}"
        if key in env:
            values[name] = env[key]
    if "otlp_endpoint" not in values and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        values["otlp_endpoint"] = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    return values


def load_settings(
    environ: Mapping[str, str] | None = None, **arguments: Any
) -> Settings:
    """Resolve settings: arguments (None means 'not given') > environment > file > default."""
    env = os.environ if environ is None else environ
    layers: list[tuple[str, dict[str, Any]]] = []
    path = config_file_path(env)
    if path is not None:
        layers.append((str(path), _read_config_file(path)))
    layers.append(("environment", _from_environment(env)))
    layers.append(("argument", {k: v for k, v in arguments.items() if v is not None}))
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for origin, layer in layers:
        for name, raw in layer.items():
            values[name] = _coerce(name, raw, origin)
            source[name] = origin
    return Settings(**values, source=source)
