"""`shardscope collect` from the command line: one-line errors for bad ports and for an
unprotected non-loopback bind, the token from --token or the environment, a clean stop on
SIGTERM that writes what was received."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers.collect import rows, traces_json

LISTENING = re.compile(r"collecting OTLP/HTTP on http://127\.0\.0\.1:(\d+)/v1/traces")


def _collect(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardscope", "collect", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "fragment"), [
    (["--port", "99999"], "--port must be a port between 0 and 65535, got 99999"),
    (["--port", "-1"], "--port must be a port between 0 and 65535, got -1"),
    (["--grpc-port", "70000"], "--grpc-port must be a port between 0 and 65535, got 70000"),
    (["--port", "4400", "--grpc-port", "4400"], "both 4400"),
    (["--host", "0.0.0.0"], "needs a token"),
    (["--host", "192.0.2.10", "--no-grpc"], "needs a token"),
    (["--token", "  "], "token is empty"),
    (["--max-body-mib", "0"], "--max-body-mib must be > 0"),
])
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = _collect("--db", str(tmp_path / "s.duckdb"), *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.duckdb").exists()  # refused before anything was opened


def _start(db: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int, str]:
    """Start collect; returns the process, its HTTP port and what it printed on starting."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shardscope", "collect", "--db", str(db), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})})
    assert process.stdout is not None
    printed = ""
    for line in iter(process.stdout.readline, ""):
        printed += line
        if line.startswith("into "):
            match = LISTENING.search(printed)
            assert match, printed
            return process, int(match.group(1)), printed
    raise AssertionError(f"collect exited ({process.wait()}) without listening: {printed}")


def test_the_token_from_the_environment_is_required_and_sigterm_stops_cleanly(db_path: Path) -> None:
    process, port, _ = _start(db_path, "--no-grpc", env={"SHARDSCOPE_COLLECT_TOKEN": "tok-from-env-1234"})
    try:
        url = f"http://127.0.0.1:{port}/v1/traces"
        refused = httpx.post(url, json=traces_json())
        accepted = httpx.post(url, json=traces_json(),
                              headers={"Authorization": "Bearer tok-from-env-1234"})
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert accepted.status_code == 200
    assert process.returncode == 0 and "Traceback" not in out
    assert "stopped: 1 spans and 0 log records stored" in out
    assert rows(db_path, "SELECT count(*) FROM spans") == [(1,)]


def test_grpc_is_served_beside_http_on_its_own_port(db_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    process, _, printed = _start(db_path, "--grpc-port", str(free))
    try:
        with socket.create_connection(("127.0.0.1", free), timeout=10):
            pass  # accepting connections
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    assert f"collecting OTLP/gRPC on 127.0.0.1:{free}" in printed and process.returncode == 0
    assert "stopped: 0 spans" in out


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _collect("--db", str(tmp_path / "s.duckdb"), "--port", str(port), "--no-grpc")
        grpc_result = _collect("--db", str(tmp_path / "s.duckdb"), "--port", "0",
                               "--grpc-port", str(port))
    assert result.returncode == 1 and "cannot listen on 127.0.0.1" in result.stderr
    assert grpc_result.returncode == 1 and "cannot serve OTLP/gRPC" in grpc_result.stderr
    assert "Traceback" not in result.stderr + grpc_result.stderr


def test_help_names_both_protocols_and_the_token() -> None:
    result = subprocess.run([sys.executable, "-m", "shardscope", "collect", "--help"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0
    for word in ("--grpc-port", "--no-grpc", "--token", "/v1/logs", "SHARDSCOPE_COLLECT_TOKEN",
                 "--max-body-mib"):
        assert word in result.stdout
