"""A real Phoenix server on loopback for a test, and a small client for its REST API.

The server runs from its own venv (tests/helpers/phoenix_venv.py), with its working directory
(SQLite database included) in the test's temp dir, HTTP and gRPC on free 127.0.0.1 ports, and
nothing that reaches out (telemetry, web fonts, the agent assistant) switched on.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.phoenix_venv import phoenix_python
from tests.helpers.wait import wait_until
from tests.servers.fixtures import free_port

LAUNCHER = Path(__file__).with_name("phoenix_serve.py")
QUIET = {
    "PHOENIX_TELEMETRY_ENABLED": "false",
    "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    "PHOENIX_ENABLE_MCP_SERVER": "false",
}


@dataclass(frozen=True)
class Phoenix:
    url: str
    grpc_port: int
    log: Path

    @property
    def otlp_traces(self) -> str:
        return f"{self.url}/v1/traces"

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=60) as reply:
            return json.loads(reply.read())

    def spans(self, project: str = "default") -> list[dict[str, Any]]:
        """Every span Phoenix stored in the project, as its REST API returns them."""
        spans: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self.get(f"/v1/projects/{project}/spans", **params)
            spans.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return spans

    def graphql(self, query: str, **variables: Any) -> Any:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            answer = json.loads(reply.read())
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]


@contextmanager
def running_phoenix(workdir: Path) -> Iterator[Phoenix]:
    """Start Phoenix, wait until it answers on its database (``/readyz``), stop it after."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "phoenix.log"
    python = phoenix_python(log)
    http_port, grpc_port = free_port(), free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
           "LANG": "C.UTF-8", "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(http_port),
           "PHOENIX_GRPC_PORT": str(grpc_port), "PHOENIX_WORKING_DIR": str(workdir), **QUIET}
    with open(log, "a") as out:
        proc = subprocess.Popen([str(python), "-I", str(LAUNCHER)], cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    phoenix = Phoenix(f"http://127.0.0.1:{http_port}", grpc_port, log)
    try:
        wait_until(lambda: _ready(phoenix, proc), f"Phoenix at {phoenix.url} to be ready",
                   interval=0.25)
        yield phoenix
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def _ready(phoenix: Phoenix, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"Phoenix exited with {proc.returncode}: "
                             f"{phoenix.log.read_text()[-4000:]}")
    try:
        with urllib.request.urlopen(f"{phoenix.url}/readyz", timeout=5) as reply:
            return reply.status == 200
    except (OSError, urllib.error.HTTPError):
        return False
