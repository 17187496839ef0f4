"""`shardscope ui`: start the Streamlit app on a store and print its URL."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from shardscope.config.errors import ShardscopeError
from shardscope.config.settings import Settings, load_settings


def app_path() -> Path:
    """The Streamlit script, wherever the ``shardscope.ui`` package lives (wheel or editable)."""
    spec = importlib.util.find_spec("shardscope.ui")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


APP = app_path()


def streamlit_command(settings: Settings, open_browser: bool) -> list[str]:
    """The ``streamlit run`` command line for the app on ``settings.db``."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", settings.ui_host,
        "--server.port", str(settings.ui_port),
        "--server.headless", "false" if open_browser else "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",  # no telemetry, no network
        "--browser.serverAddress", settings.ui_host,
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",  # no "Deploy" button: this app serves a local store
        "--", "--db", str(Path(settings.db).expanduser().absolute()),
    ]


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the server will: a port left in TIME_WAIT by a previous run is free to serve.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ShardscopeError(
                f"cannot serve the UI on {host}:{port}: {exc.strerror}; pass --port (or set "
                "SHARDSCOPE_UI_PORT) to use another port"
            ) from None


def ui_command(db: Path | None, host: str | None, port: int | None, open_browser: bool) -> int:
    """Serve the app for the store at ``db`` (default: the `db` setting) until Ctrl-C.

    Binds ``ui_host`` (127.0.0.1 unless told otherwise) on ``ui_port``; prints the URL. A
    missing or empty store is fine: the app shows how to create one and fills in as a run
    writes. Returns the exit code.
    """
    settings = load_settings(db=db, ui_host=host, ui_port=port)
    check_port_free(settings.ui_host, settings.ui_port)
    shown_host = f"[{settings.ui_host}]" if ":" in settings.ui_host else settings.ui_host
    print(f"shardscope UI for {Path(settings.db).absolute()}", flush=True)
    print(f"  URL: http://{shown_host}:{settings.ui_port}  (Ctrl-C stops)", flush=True)
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    process = subprocess.Popen(streamlit_command(settings, open_browser), env=env)
    previous = _stop_on_sigterm()
    try:
        return process.wait()
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        _stop(process)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# What signal.signal returns and accepts (typeshed's private signal._HANDLER).
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _stop_on_sigterm() -> _Handler:
    """SIGTERM unwinds like Ctrl-C, so the server is never left running without us."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def raise_exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, raise_exit)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
