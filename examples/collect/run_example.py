"""Runs the whole example offline: `shardscope collect` with a token on free loopback ports,
the app sending over OTLP/HTTP and then over OTLP/gRPC, configured only by OTEL_* variables,
and a look at what landed in the store.

    python examples/collect/run_example.py [--db PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_collect(db: Path, token: str) -> tuple[subprocess.Popen, int, int]:
    grpc_port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shardscope", "collect", "--db", str(db), "--port", "0",
         "--grpc-port", str(grpc_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "SHARDSCOPE_COLLECT_TOKEN": token},
    )
    assert process.stdout is not None
    printed = ""
    for line in iter(process.stdout.readline, ""):
        print(f"  collect | {line.rstrip()}")
        printed += line
        if line.startswith("into "):
            http_port = int(re.search(r"127\.0\.0\.1:(\d+)/v1/traces", printed).group(1))
            return process, http_port, grpc_port
    raise SystemExit(f"collect did not start: {printed}")


def run_app(protocol: str, endpoint: str, token: str, service: str) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{token}",
        "OTEL_SERVICE_NAME": service,
    }
    print(f"app over {protocol} -> {endpoint}")
    subprocess.run([sys.executable, str(HERE / "agent_app.py")], env=env, check=True, timeout=120)


def show(db: Path) -> None:
    con = duckdb.connect(str(db), read_only=True)
    print("\nspans per service:")
    for row in con.execute(
        "SELECT resource->>'$.\"service.name\"' AS service, count(*) AS spans, "
        "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens "
        "FROM spans GROUP BY 1 ORDER BY 1"
    ).fetchall():
        print(f"  {row[0]}: {row[1]} spans, {row[2]} input / {row[3]} output tokens")
    print("\nmessage content (log events joined to their chat spans):")
    for row in con.execute(
        "SELECT s.resource->>'$.\"service.name\"', l.event_name, "
        "coalesce(l.body->>'$.content', l.body->'$.message'->>'$.content') "
        "FROM log_events l JOIN spans s USING (trace_id, span_id) ORDER BY 1, l.time_ns"
    ).fetchall():
        print(f"  {row[0]:>10} {row[1]:<20} {row[2]}")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="store to write (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "collected.duckdb"
        token = secrets.token_hex(16)
        process, http_port, grpc_port = start_collect(db, token)
        try:
            run_app("http/protobuf", f"http://127.0.0.1:{http_port}", token, "via-http")
            run_app("grpc", f"http://127.0.0.1:{grpc_port}", token, "via-grpc")
        finally:
            process.send_signal(signal.SIGINT)
            out, _ = process.communicate(timeout=60)
            for line in out.splitlines():
                print(f"  collect | {line}")
        show(db)


if __name__ == "__main__":
    main()
