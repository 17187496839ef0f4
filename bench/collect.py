"""Collector throughput: spans/s into a real ``shardscope collect`` from 1 and 4 concurrent
OTLP/HTTP senders, durable on ack, against the in-process pipeline on the same spans in the
same run.

The spans are the ones bench/ingest.py measures (``make_spans``). The in-process figure is
bench/ingest.py's "ours": the SDK's finished spans through our processor into a DuckDB file.
The collector figure starts a ``shardscope collect`` subprocess on a fresh store and sends the
same spans, encoded beforehand by the SDK's OTLP encoder in batches of 512 (the SDK's default
export batch), over keep-alive HTTP connections, each sender waiting for its acknowledgement
before the next request as an SDK exporter does. The clock stops at the last 200: the
collector answers only after a commit, so every acknowledged span is in the store. The bench
then stops the collector and asserts exact counts: every span once, none lost, none doubled.

Last line: ``collect_ratio: <slower of the 1- and 4-sender rates / in-process rate>``
(target >= 0.5).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ATTRIBUTES, make_spans
from bench.ingest import ours as in_process
from shardscope.tracer import attributes as A
from shardscope.tracer.store import Store

BATCH = 512
_LISTENING = re.compile(r"collecting OTLP/HTTP on http://127\.0\.0\.1:(\d+)/v1/traces")


class Collect:
    """A ``shardscope collect`` subprocess on a fresh store, on a free loopback port."""

    def __init__(self, db: Path) -> None:
        with Store(db).writer():
            pass  # schema creation is not ingest (bench/ingest.py does the same)
        self.db = db
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shardscope", "collect", "--db", str(db), "--port", "0",
             "--no-grpc"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = _LISTENING.search(line)
            if match:
                return int(match.group(1))
        raise RuntimeError(f"collect exited with {self.process.wait()} before listening")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=120)
        if self.process.returncode != 0:
            raise RuntimeError(f"collect exited with {self.process.returncode}: {out}")
        return out.strip().splitlines()[-1]


def send(port: int, bodies: list[bytes], errors: list[str]) -> None:
    """One exporter: POST each body on one keep-alive connection, waiting for each ack."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/x-protobuf"}
    try:
        for body in bodies:
            connection.request("POST", "/v1/traces", body, headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                errors.append(f"HTTP {response.status}: {payload[:200]!r}")
                return
            if ExportTraceServiceResponse.FromString(payload).HasField("partial_success"):
                errors.append(f"partial success: {payload[:200]!r}")
                return
    finally:
        connection.close()


def collector_rate(bodies: list[bytes], spans: int, senders: int, db: Path) -> tuple[float, str]:
    collect = Collect(db)
    errors: list[str] = []
    threads = [threading.Thread(target=send, args=(collect.port, bodies[i::senders], errors))
               for i in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    summary = collect.stop()
    if errors:
        raise AssertionError(f"{len(errors)} senders failed: {errors[0]}")
    check_store(db, spans)
    return spans / elapsed, summary


def check_store(db: Path, spans: int) -> None:
    """Every span exactly once, with its attributes intact."""
    con = duckdb.connect(str(db), read_only=True)
    total, distinct, tokens = con.execute(
        "SELECT count(*), count(DISTINCT (trace_id, span_id)), sum(input_tokens) FROM spans"
    ).fetchone()
    con.close()
    expected_tokens = spans * ATTRIBUTES[A.GEN_AI_USAGE_INPUT_TOKENS]
    assert (total, distinct, tokens) == (spans, spans, expected_tokens), (
        f"store holds {total} spans ({distinct} distinct, {tokens} input tokens); expected "
        f"{spans} ({expected_tokens} tokens)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    spans = make_spans(args.spans)
    bodies = [encode_spans(spans[i:i + BATCH]).SerializeToString()
              for i in range(0, len(spans), BATCH)]
    gc.freeze()  # the input spans live for the whole script; keep GC scans out of the timing
    rates: dict[str, list[float]] = {"in-process": [], "1 sender": [], "4 senders": []}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for i in range(args.rounds):  # alternate, so drift on a noisy machine hits all three
            rates["in-process"].append(in_process(spans, directory, f"p{i}"))
            for senders in (1, 4):
                rate, summary = collector_rate(bodies, len(spans), senders,
                                               directory / f"collect-{senders}-{i}.duckdb")
                rates["1 sender" if senders == 1 else "4 senders"].append(rate)
                print(f"round {i}: {senders} sender(s): {rate:,.0f} spans/s; collect said "
                      f"{summary!r}", flush=True)
            print(f"round {i}: in-process: {rates['in-process'][-1]:,.0f} spans/s", flush=True)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"spans per measurement: {args.spans:,} in requests of {BATCH}; rounds: {args.rounds}")
    for name in ("in-process", "1 sender", "4 senders"):
        print(f"{name}: {median[name]:,.0f} spans/s (runs: "
              f"{', '.join(f'{v:,.0f}' for v in rates[name])})")
    ratios = {name: median[name] / median["in-process"] for name in ("1 sender", "4 senders")}
    print(f"ratios: 1 sender {ratios['1 sender']:.3f}, 4 senders {ratios['4 senders']:.3f}")
    print(f"collect_ratio: {min(ratios.values()):.3f}")


if __name__ == "__main__":
    main()
