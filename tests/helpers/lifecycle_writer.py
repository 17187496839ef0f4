"""A traced program that never flushes or shuts its tracing down, for the lifecycle tests.

It builds tracing from the default settings (only the store path and the exporters are
given), ends ``--spans`` spans named ``<--name>-<i>`` and then, by ``--end``:

- ``return``: returns from ``main`` (a normal exit; no ``shutdown()``, no ``force_flush()``);
- ``raise``: dies of an uncaught exception;
- ``wait``: blocks until killed (a live run the test watches from outside).

Its own messages go to stderr, so stdout holds only what an exporter (console) printed.
"""

from __future__ import annotations

import argparse
import sys
import time

from shardscope.config.settings import load_settings
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.setup import setup_tracing


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--spans", type=int, default=1)
    parser.add_argument("--name", default="probe")
    parser.add_argument("--exporters", default="duckdb")
    parser.add_argument("--end", choices=("return", "raise", "wait"), default="return")
    args = parser.parse_args()
    settings = load_settings(db=args.db, exporters=args.exporters)
    tracing = setup_tracing(settings, strict=True)
    for i in range(args.spans):
        with tracing.span(f"{args.name}-{i}", SpanType.SPAN, {"probe.seq": i}):
            pass
    print(f"ended {args.spans}", file=sys.stderr, flush=True)
    if args.end == "raise":
        raise RuntimeError("the traced program crashed")
    if args.end == "wait":
        while True:
            time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
