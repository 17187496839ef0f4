"""`ui_command` (registered as `shardscope ui`): the server it starts, where it binds, and
how it stops."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shardscope.commands.ui import APP, streamlit_command, ui_command
from shardscope.config.errors import ShardscopeError
from shardscope.config.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_binds_loopback_and_passes_the_store(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest: no SHARDSCOPE_* variables, no ~/.config/shardscope of the developer's
    monkeypatch.chdir(tmp_path)  # the relative --db resolves here
    settings = load_settings(db=Path("rel/store.duckdb"))
    cmd = streamlit_command(settings, open_browser=False)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP)]
    options = dict(zip(cmd[5:-3:2], cmd[6:-3:2], strict=True))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8501"
    assert options["--server.headless"] == "true" and options["--browser.gatherUsageStats"] == "false"
    assert cmd[-3:] == ["--", "--db", str(tmp_path / "rel" / "store.duckdb")]
    other = streamlit_command(load_settings(ui_host="0.0.0.0", ui_port=9000), open_browser=True)
    assert "0.0.0.0" in other and "9000" in other and other[other.index("--server.headless") + 1] == "false"


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ShardscopeError, match=f"cannot serve the UI on 127.0.0.1:{port}: .*--port"):
            ui_command(tmp_path / "s.duckdb", None, port, False)


@pytest.mark.slow
def test_serves_the_app_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    db = tmp_path / "not-yet.duckdb"
    code = ("import sys; from pathlib import Path; from shardscope.commands.ui import ui_command; "
            f"sys.exit(ui_command(Path({str(db)!r}), None, {port}, False))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == f"shardscope UI for {db}"
    assert proc.stdout.readline().strip().startswith(f"URL: http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180  # a hung server, not a speed bound
    health = b""
    while time.monotonic() < deadline and health != b"ok":
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                health = r.read()
        except OSError:
            time.sleep(0.25)
    assert health == b"ok"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
        assert page.status == 200 and b"<html" in page.read().lower()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    with socket.socket() as again:  # the streamlit server went with it (nobody listens)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
    assert not db.exists()  # serving a missing store never creates it
