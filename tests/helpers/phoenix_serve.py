"""``phoenix serve`` with its gRPC OTLP receiver bound to loopback (run by the Phoenix venv).

arize-phoenix 20.26.1 binds its gRPC receiver on ``[::]`` and has no setting for that host
(``phoenix/server/grpc_server.py``: ``add_insecure_port(f"[::]:{port}")``; ``PHOENIX_HOST``
moves only the HTTP server). Test servers bind 127.0.0.1 only, so that one bind address is
rewritten before Phoenix starts; nothing else about Phoenix changes. Run with ``python -I``
(no script directory on ``sys.path``), from the Phoenix venv, never the project's.
"""

import sys

import grpc.aio._server as grpc_server

_bind = grpc_server.Server.add_insecure_port


def _loopback(self, address):  # type: ignore[no-untyped-def]
    return _bind(self, address.replace("[::]:", "127.0.0.1:", 1))


grpc_server.Server.add_insecure_port = _loopback  # type: ignore[method-assign]

from phoenix.server.main import main  # noqa: E402 - after the bind is patched

sys.argv = ["phoenix", "serve"]
sys.exit(main())
