"""A span-writing process for the multi-process store tests.

Writes ``--spans`` spans in batches of ``--batch`` through the real pipeline; with
``--ack`` it force-flushes after each batch and prints ``flushed <total>`` once the batch is
in the store, so a parent can kill it and know what must have survived. With ``--hold FILE``
it flushes its first batch, prints ``flushed <n>`` and writes nothing more until FILE exists,
so a reader provably queries while this writer is still running.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from shardscope.config.settings import Settings
from shardscope.tracer import attributes as A
from shardscope.tracer.attributes import SpanType
from shardscope.tracer.setup import setup_tracing


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--tag", default="w")
    parser.add_argument("--ack", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0, help="pause between batches")
    parser.add_argument("--then-wait", action="store_true", help="block at the end until killed")
    parser.add_argument("--hold", type=Path, help="after the first batch, wait for this file")
    args = parser.parse_args()
    tracing = setup_tracing(
        Settings(db=args.db, flush_interval=0.2), install_signal_handlers=True, strict=True
    )
    written = 0
    with tracing.inherit({A.RUN_ID: args.tag}):
        while written < args.spans:
            for _ in range(min(args.batch, args.spans - written)):
                with tracing.span("work", SpanType.SPAN, {"writer.seq": written}):
                    written += 1
            hold = args.hold is not None and written <= args.batch
            if args.ack or hold:
                if not tracing.force_flush(300):
                    print("flush timed out", file=sys.stderr)
                    return 3
                print(f"flushed {written}", flush=True)
            while hold and not args.hold.exists():
                time.sleep(0.02)
            if args.sleep:
                time.sleep(args.sleep)
    print(f"done {written}", flush=True)
    if args.then_wait:
        while True:
            time.sleep(0.1)
    tracing.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
