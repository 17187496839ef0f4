"""The model catalog as data: ``config/models.toml`` plus the user's own file, as typed records.

``read_catalog()`` reads the shipped catalog and merges the user's file over it (an entry
with an existing id and the same backend is merged key by key, otherwise replaced), and checks
what every entry needs whatever its backend: a table per id, a backend name, the provider's
model name, known parameters, prices >= 0. The keys an entry has beyond the common ones stay
in ``options``, unchecked here.

This module knows no kind of backend. The backend registry
(:mod:`shardscope.scaffolds.backends.registry`) checks each entry against its kind (allowed
keys, what the kind needs, its default provider name), says whether it can run here, and
builds it: load catalogs with ``registry.load_catalog``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from shardscope.config import CONFIG_DIR
from shardscope.config.errors import ConfigError

BUILTIN_CATALOG = CONFIG_DIR / "models.toml"
PARAM_KEYS = frozenset({"temperature", "top_p", "max_tokens", "seed"})
CAPABILITY_KEYS = ("tools", "streaming", "logprobs", "system_prompt", "chat_template")
# Keys every entry may have, whatever its backend; the rest are the backend's own options.
COMMON_KEYS = frozenset(
    {"backend", "model", "provider", "description", "price_input_per_million",
     "price_output_per_million", "params", "base_url", "api_key_env", *CAPABILITY_KEYS}
)


@dataclass(frozen=True)
class Price:
    """US dollars per million input / output tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        if input_tokens is None and output_tokens is None:
            return None
        return (
            (input_tokens or 0) * self.input_per_million
            + (output_tokens or 0) * self.output_per_million
        ) / 1e6


@dataclass(frozen=True)
class ModelEntry:
    """One catalog entry. ``options`` holds the keys beyond the common ones (weights, n_ctx, ...)."""

    id: str
    backend: str
    model: str
    provider: str = ""  # gen_ai.provider.name; "" until the registry fills in its kind's default
    description: str = ""
    price_input_per_million: float | None = None
    price_output_per_million: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)
    base_url: str | None = None
    api_key_env: str | None = None  # the NAME of the variable holding the key, never a key
    capabilities: Mapping[str, bool] = field(default_factory=dict, compare=False)
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    source: str = ""

    @property
    def where(self) -> str:
        """Where the entry comes from, as messages about it start: ``<file>: [models.<id>]``."""
        return f"{self.source}: [models.{self.id}]"

    @property
    def price(self) -> Price | None:
        """The entry's :class:`Price`, or None when the catalog has none."""
        if self.price_input_per_million is None and self.price_output_per_million is None:
            return None
        return Price(self.price_input_per_million or 0.0, self.price_output_per_million or 0.0)


class Catalog:
    """Model entries by id."""

    def __init__(self, entries: Mapping[str, ModelEntry], sources: list[Path]) -> None:
        self._entries = dict(entries)
        self.sources = sources

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self._entries[model_id]
        except KeyError:
            files = " or ".join(str(s) for s in self.sources)
            raise ConfigError(
                f"model {model_id!r} is not in {files}; known models: {', '.join(self.ids())}"
            ) from None

    def ids(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._entries


def read_catalog(extra: Path | None = None, *, builtin: Path = BUILTIN_CATALOG) -> Catalog:
    """The shipped catalog with the user's file merged over it, checked for what every entry needs.

    ``extra`` None means the ``models_file`` setting (``SHARDSCOPE_MODELS_FILE``, config file).
    """
    if extra is None:
        from shardscope.config.settings import load_settings

        extra = load_settings().models_file
    raw: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    sources = [builtin] + ([Path(extra)] if extra else [])
    for path in sources:
        for model_id, table in _read(path).items():
            base = raw.get(model_id)
            if base is not None and table.get("backend", base["backend"]) == base["backend"]:
                table = _merge(base, table)
            raw[model_id] = table
            origin[model_id] = str(path)
    return Catalog({k: _entry(k, v, origin[k]) for k, v in raw.items()}, sources)


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"model catalog {path} does not exist (check models_file / "
                          "SHARDSCOPE_MODELS_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a model catalog is UTF-8 TOML)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the model catalog: {exc.strerror}") from None
    models = data.get("models")
    if not isinstance(models, dict):
        raise ConfigError(f"{path}: expected [models.<id>] tables")
    for model_id, table in models.items():
        if not isinstance(table, dict) or ("backend" not in table and not _looks_partial(table)):
            raise ConfigError(
                f"{path}: [models.{model_id}] is not an entry (ids with dots need quotes: "
                f'[models."{model_id}.x"])'
            )
    return models


def _looks_partial(table: dict[str, Any]) -> bool:
    # An override of an existing id may leave out `backend`; a nested table means a dotted id.
    return not any(isinstance(v, dict) and "backend" in v for v in table.values())


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def _entry(model_id: str, table: dict[str, Any], source: str) -> ModelEntry:
    where = f"{source}: [models.{model_id}]"
    backend = table.get("backend")
    if not isinstance(backend, str) or not backend:
        raise ConfigError(f"{where}: `backend` (the kind of backend that runs the model) is required")
    if not isinstance(table.get("model"), str) or not table["model"]:
        raise ConfigError(f"{where}: `model` (the provider's model name) is required")
    params = dict(table.get("params") or {})
    if set(params) - PARAM_KEYS:
        raise ConfigError(f"{where}: params may set only {', '.join(sorted(PARAM_KEYS))}")
    prices = [table.get("price_input_per_million"), table.get("price_output_per_million")]
    if any(p is not None and (not isinstance(p, (int, float)) or p < 0) for p in prices):
        raise ConfigError(f"{where}: prices must be numbers >= 0 (US dollars per million tokens)")
    return ModelEntry(
        id=model_id,
        backend=backend,
        model=table["model"],
        provider=table.get("provider") or "",
        description=table.get("description", ""),
        price_input_per_million=_float(prices[0]),
        price_output_per_million=_float(prices[1]),
        params=MappingProxyType(params),
        base_url=table.get("base_url"),
        api_key_env=table.get("api_key_env"),
        capabilities=MappingProxyType({k: bool(table[k]) for k in CAPABILITY_KEYS if k in table}),
        options=MappingProxyType({k: v for k, v in table.items() if k not in COMMON_KEYS}),
        source=source,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
