"""The collect example runs as documented: an app configured only by OTEL_* variables sends
over OTLP/HTTP and OTLP/gRPC, with the token, into a real `shardscope collect`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.collect import rows

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "collect" / "run_example.py"


def test_the_collect_example_lands_both_protocols(tmp_path: Path) -> None:
    db = tmp_path / "example.duckdb"
    result = subprocess.run([sys.executable, str(EXAMPLE), "--db", str(db)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopped: 8 spans and 8 log records stored" in result.stdout
    assert rows(db, "SELECT resource->>'$.\"service.name\"', count(*), sum(input_tokens) "
                "FROM spans GROUP BY 1 ORDER BY 1") == [("via-grpc", 4, 83), ("via-http", 4, 83)]
    assert rows(db, "SELECT count(*) FROM log_events l JOIN spans s USING (trace_id, span_id) "
                "WHERE s.name = 'chat toy-model'") == [(8,)]
