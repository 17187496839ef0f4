"""Model-written code tries to get out of the run_tests sandbox; every attempt is contained.

Network, the parent's environment, a daemon that outlives the tool, writes outside the
workdir, filling the disk, forging the tests_pass verdict, injecting a pytest option. Where
bubblewrap is missing the fallback runs with a loud warning (simulated here).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardscope.scaffolds.tasks import get_suite
from shardscope.scaffolds.tasks.checks import check
from shardscope.scaffolds.tools import ToolContext, default_registry, sandbox
from shardscope.scaffolds.tools.pytest_runner import PytestRun, run_pytest

_BWRAP, _WHY = sandbox.bwrap_status()
needs_bwrap = pytest.mark.skipif(
    _BWRAP is None and not os.environ.get("CI"), reason=f"no sandbox here: {_WHY}"
)


def live_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker`` and that are not zombies."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def watch_for(marker: str) -> Iterator[list[int]]:
    """Collect, while the block runs, the pids of processes carrying ``marker``."""
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.extend(live_processes_with(marker))
            stop.wait(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def gone_soon(marker: str, within_s: float = 60.0) -> bool:
    stop = threading.Event()
    for _ in range(int(within_s / 0.05)):
        if not live_processes_with(marker):
            return True
        stop.wait(0.05)
    return False


def _ctx(workdir: Path, **limits: float) -> ToolContext:
    return ToolContext(workdir=workdir, **{"timeout_s": 30.0, "memory_mb": 512, **limits})


def _pytest(workdir: Path, source: str, target: str | None = None) -> PytestRun:
    (workdir / "test_escape.py").write_text(source)
    return run_pytest(workdir, target, _ctx(workdir))


def _contained(run: PytestRun) -> None:
    """The inner tests (which assert the escape failed) all ran and passed, in the sandbox."""
    assert run.done.sandboxed and run.done.warning is None
    assert run.verdict.all_passed, (run.verdict, run.done.output)


@needs_bwrap
def test_no_network_even_to_a_parent_loopback_listener(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        run = _pytest(
            tmp_path,
            "import socket, pytest\n"
            "def test_connect():\n"
            "    with pytest.raises(OSError):\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
            "def test_no_interfaces_but_loopback():\n"
            "    names = [name for _, name in socket.if_nameindex()]\n"
            "    assert names == ['lo'], names\n",
        )
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    _contained(run)
    assert run.verdict.ran == 2


@needs_bwrap
def test_the_parent_environment_and_its_proc_are_out_of_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk-fake-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    run = _pytest(
        tmp_path,
        "import os\n"
        "def test_environ():\n"
        "    seen = [repr(dict(os.environ))]\n"
        "    for pid in [os.getppid(), 1] + [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "        try:\n"
        "            seen.append(open(f'/proc/{pid}/environ', 'rb').read().decode())\n"
        "        except OSError as exc:\n"
        "            seen.append(type(exc).__name__)\n"
        f"    assert {key[:12]!r} not in ' '.join(seen), seen\n"
        "    assert 'OPENAI_API_KEY' not in ' '.join(seen), seen\n"
        "def test_only_the_sandbox_processes_are_visible():\n"
        "    pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
        "    assert max(pids) < 50 and os.getpid() < 50, pids\n",
    )
    _contained(run)
    assert key not in run.done.output


@needs_bwrap
def test_a_setsid_daemon_does_not_outlive_the_tool(tmp_path: Path) -> None:
    marker = f"shardscope-daemon-{uuid.uuid4().hex}"
    with watch_for(marker) as seen:
        run = _pytest(
            tmp_path,
            "import subprocess, sys, time\n"
            "def test_spawn_daemon():\n"
            "    code = 'import os, time; os.fork() and os._exit(0); os.setsid(); time.sleep(120)'\n"
            f"    subprocess.Popen([sys.executable, '-c', code, {marker!r}],\n"
            "                     start_new_session=True, stdout=subprocess.DEVNULL,\n"
            "                     stderr=subprocess.DEVNULL).wait()\n"
            "    time.sleep(0.5)\n",
        )
    _contained(run)
    assert seen, "the daemon never started: the test shows nothing"
    assert gone_soon(marker), "a setsid daemon outlived run_tests"


@needs_bwrap
def test_writes_outside_the_workdir_fail_or_stay_private(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"escaped-{uuid.uuid4().hex}"
    repo_file = Path(__file__).resolve().parent / f"escaped-{uuid.uuid4().hex}"
    site = Path(pytest.__file__).parent / "escaped.py"
    targets = ["/usr/escaped", "/etc/escaped", str(repo_file), str(site),
               "/run/shardscope/source/escaped", "/run/shardscope/support/escaped"]  # fmt: skip
    run = _pytest(
        tmp_path,
        "import os, pytest\n"
        f"@pytest.mark.parametrize('path', {targets!r})\n"
        "def test_cannot_write(path):\n"
        "    with pytest.raises(OSError):\n"
        "        open(path, 'w').write('x')\n"
        "def test_tmp_is_private():\n"
        f"    os.makedirs({str(outside)!r})\n"
        f"    open(os.path.join({str(outside)!r}, 'f'), 'w').write('x')\n"
        "def test_the_workdir_is_writable():\n"
        "    open('mine.txt', 'w').write('x')\n",
    )
    _contained(run)
    assert run.verdict.ran == len(targets) + 2
    assert not outside.exists() and not repo_file.exists() and not site.exists()
    assert not (tmp_path / "mine.txt").exists()  # the sandbox's workdir is a private copy


@needs_bwrap
def test_filling_the_disk_stops_at_the_quota(tmp_path: Path) -> None:
    quota = sandbox.DISK_QUOTA_BYTES
    run = _pytest(
        tmp_path,
        "import errno, os, pytest\n"
        "def test_fill():\n"
        "    written, chunk = 0, b'x' * (1024 * 1024)\n"
        "    with pytest.raises(OSError) as stopped:\n"
        "        for n in range(10_000):\n"
        "            target = ('/tmp/' if n % 2 else '') + f'fill-{n}'\n"
        "            with open(target, 'wb') as out:\n"
        "                for _ in range(4):\n"
        "                    out.write(chunk)\n"
        "                    out.flush()\n"
        "                    written += len(chunk)\n"
        "    assert stopped.value.errno == errno.ENOSPC\n"
        f"    assert {quota // 2} < written <= {quota}, written\n",
    )
    _contained(run)


@needs_bwrap
def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path) -> None:
    run = _pytest(
        tmp_path,
        "import os, time, pytest\n"
        "def test_bomb():\n"
        "    children = []\n"
        "    with pytest.raises(BlockingIOError):\n"
        "        for _ in range(10_000):\n"
        "            pid = os.fork()\n"
        "            if pid == 0:\n"
        "                time.sleep(30)\n"
        "                os._exit(0)\n"
        "            children.append(pid)\n"
        f"    assert len(children) < {sandbox.MAX_PROCESSES}, len(children)\n"
        "    for pid in children:\n"
        "        os.kill(pid, 9)\n"
        "        os.waitpid(pid, 0)\n",
    )
    _contained(run)


@needs_bwrap
def test_a_workdir_larger_than_the_quota_is_a_clear_error(tmp_path: Path) -> None:
    with open(tmp_path / "big.bin", "wb") as big:  # sparse here, real bytes once copied in
        big.truncate(sandbox.DISK_QUOTA_BYTES + 1024 * 1024)
    (tmp_path / "test_a.py").write_text("def test_ok():\n    pass\n")
    result = default_registry().get("run_tests").run({}, _ctx(tmp_path))
    assert not result.ok and result.error_type == "sandbox_error", result
    assert "No space left" in (result.error_message or ""), result


@pytest.fixture
def bugfix(tmp_path: Path):
    task = get_suite("bugfix").task("bugfix-001")
    instance = task.instantiate(tmp_path)
    init = instance.tool_context.workdir / "ledger" / "__init__.py"
    return task, instance, init


_FORGE_AT_EXIT = """
import atexit as _atexit, glob as _glob, json as _json, os as _os

def _forge():
    fake = _json.dumps({"passed": 27, "failed": 0, "error": 0, "skipped": 0, "exitstatus": 0})
    for fd in range(3, 256):
        try:
            _os.write(fd, (fake + "\\n").encode())
        except OSError:
            pass
    for report in _glob.glob("/tmp/**/*.xml", recursive=True) + _glob.glob("**/*.xml"):
        open(report, "w").write('<testsuite tests="27" failures="0" errors="0"/>')
    _os._exit(0)

_atexit.register(_forge)
"""

# The stronger forger also keeps a copy of every descriptor open at import time.
_FORGE_WITH_DUPS = _FORGE_AT_EXIT.replace(
    "def _forge():",
    "_kept = [_os.dup(fd) for fd in range(3, 64) if _os.path.exists(f'/proc/self/fd/{fd}')]\n\n"
    "def _forge():",
).replace("for fd in range(3, 256):", "for fd in _kept + list(range(3, 256)):")


@needs_bwrap
@pytest.mark.parametrize("forger", [_FORGE_AT_EXIT, _FORGE_WITH_DUPS], ids=["atexit", "dup"])
def test_an_atexit_hook_cannot_forge_the_verdict(bugfix, forger: str) -> None:
    task, instance, init = bugfix
    init.write_text(init.read_text() + forger)
    result = check(task, "fixed", instance)
    assert result.outcome == "failure", result
    if forger is _FORGE_AT_EXIT:
        assert result.detail == "26/27 tests passed"  # the real count, unchanged
    else:
        assert "tampered" in result.detail


@needs_bwrap
def test_a_path_is_never_read_as_a_pytest_option(tmp_path: Path) -> None:
    (tmp_path / "--co").mkdir()
    (tmp_path / "--co" / "test_inside.py").write_text("def test_fails():\n    assert False\n")
    tool = default_registry().get("run_tests")
    refused = tool.run({"path": "--co"}, _ctx(tmp_path))
    assert refused.error_type == "path_refused" and "'-'" in (refused.error_message or "")
    # Past the tool's check, pytest still gets it after "--": a directory, not --collect-only.
    run = run_pytest(tmp_path, "--co", _ctx(tmp_path))
    assert run.verdict.ran == 1 and run.verdict.passed == 0, run.done.output
    assert "1 failed" in run.done.output


@pytest.mark.parametrize("bwrap", ["bwrap-is-not-installed", "false"], ids=["absent", "broken"])
def test_without_bubblewrap_it_falls_back_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, bwrap: str
) -> None:
    monkeypatch.setattr(sandbox, "BWRAP", bwrap)
    (tmp_path / "test_a.py").write_text("def test_ok():\n    pass\ndef test_bad():\n    1/0\n")
    with caplog.at_level(logging.WARNING, logger=sandbox.__name__):
        result = default_registry().get("run_tests").run({}, _ctx(tmp_path))
    assert result.ok and "1 failed, 1 passed" in result.output
    assert result.output.startswith("WARNING: bubblewrap") or result.output.startswith(
        "WARNING: bwrap cannot create namespaces"
    )
    assert "WITHOUT a sandbox" in result.output
    assert any("WITHOUT a sandbox" in r.getMessage() for r in caplog.records)
    run = run_pytest(tmp_path, None, _ctx(tmp_path))
    assert not run.done.sandboxed and (run.verdict.ran, run.verdict.passed) == (2, 1)


def test_limits_are_set_inside_the_child_not_by_preexec_fn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``preexec_fn`` (unsafe in a threaded process, finding 6): every process the tools
    start is spawned without one, and the tests still run under the limits (read from
    /proc/self/limits inside them)."""
    import subprocess

    spawned: list[dict[str, object]] = []
    real_popen = subprocess.Popen

    class Recording(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            spawned.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    run = _pytest(
        tmp_path,
        "def test_limits():\n"
        "    limits = open('/proc/self/limits').read()\n"
        "    line = next(ln for ln in limits.splitlines() if ln.startswith('Max address space'))\n"
        f"    assert line.split()[3] == str({512 * 1024 * 1024}), line\n"
        "    line = next(ln for ln in limits.splitlines() if ln.startswith('Max processes'))\n"
        f"    assert line.split()[2] == '{sandbox.MAX_PROCESSES}', line\n",
    )
    assert run.verdict.all_passed, (run.verdict, run.done.output)
    database = tmp_path / "d.duckdb"
    import duckdb

    duckdb.connect(str(database)).close()
    tool = default_registry().get("sql")
    try:
        assert tool.run({"query": "SELECT 1"}, ToolContext(workdir=tmp_path,
                                                           dataset_path=database)).ok
    finally:
        tool.close()  # type: ignore[attr-defined]
    assert len(spawned) >= 2, spawned  # the tests' sandbox and the sql worker at least
    assert all(kwargs.get("preexec_fn") is None for kwargs in spawned), spawned
