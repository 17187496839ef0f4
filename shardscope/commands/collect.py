"""`shardscope collect`: the OTLP receiver in front of the store."""

from __future__ import annotations

from shardscope.config.errors import ShardscopeError
from shardscope.tracer.collector import Collector, serve
from shardscope.tracer.store import Store


def collect_command(store: Store, host: str, port: int) -> int:
    """Serve OTLP/HTTP on ``host:port`` into ``store`` until Ctrl-C; returns the exit code."""
    collector = Collector(store)
    try:
        server = serve(collector, host, port)
    except OSError as exc:
        collector.close()
        raise ShardscopeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    print(f"collecting OTLP traces on http://{host}:{server.server_port}/v1/traces "
          f"into {store.path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        collector.close()
        print(f"stopped: {collector.accepted} spans stored, {collector.rejected} rejected",
              flush=True)
    return 0
