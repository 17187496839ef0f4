"""Run model-written code in a bubblewrap sandbox, under limits set inside it.

The sandbox (``bwrap``) gets no network, a read-only view of the system and of the Python
install, a private size-capped tmpfs as its workdir (a copy of the real one) and ``/tmp``,
its own PID namespace with a fresh ``/proc``, and an empty environment except what the
caller declares. Inside it a small shim (``python -c``) drops root for a per-call uid when it
is root, sets the process, CPU, memory, file-size and open-file limits with ``setrlimit``,
then ``exec``s the command: no ``preexec_fn``, which is unsafe in a threaded process.

Where bubblewrap is missing or cannot create namespaces the same shim runs directly in the
real workdir, with a loud warning in the log and in :attr:`Completed.warning`: limits only,
no isolation.

Output goes to a temporary file outside the sandbox (not a pipe), so a flood costs disk up
to a cap instead of this process's memory; only its head and tail are read back. A caller
may ask for a *channel*: a pipe whose write end the command inherits (its number in
``CHANNEL_FD``) and whose content comes back in :attr:`Completed.channel`; nothing the code
writes to its files can change it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

MAX_CAPTURED_BYTES = 8 * 1024 * 1024  # RLIMIT_FSIZE: a child writing a larger file is stopped
DISK_QUOTA_BYTES = 128 * 1024 * 1024  # the sandbox's workdir and /tmp together (one tmpfs)
MAX_PROCESSES = 64  # RLIMIT_NPROC (threads count too)
MAX_OPEN_FILES = 256
MAX_CHANNEL_BYTES = 64 * 1024
CHANNEL_ENV = "CHANNEL_FD"
BWRAP = "bwrap"  # the program looked up on PATH
_READ_BACK = 64 * 1024
_SETUP_FAILED = 125  # the shim's exit code when it could not prepare the sandbox

# Paths inside the sandbox. Arguments and environment values may name them with these tokens,
# which become the real paths when the command runs unsandboxed.
WORKDIR_TOKEN = "@WORKDIR@"
SUPPORT_TOKEN = "@SUPPORT@"
_ROOT = "/sandbox"
_WORK = f"{_ROOT}/work"
_TMP = f"{_ROOT}/tmp"
_SOURCE = "/run/shardscope/source"
_SUPPORT = "/run/shardscope/support"
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/mime.types",
)

# Runs inside the sandbox as its first process, before the command: trusted code only.
_SHIM = r"""
import json, os, resource, shutil, sys
spec = json.loads(sys.argv[1])
try:
    if spec["copy"]:
        shutil.copytree(spec["copy"][0], spec["copy"][1], symlinks=True, dirs_exist_ok=True)
    uid = spec["uid"]
    if uid is not None:
        for top in spec["own"]:
            os.lchown(top, uid, uid)
            for where, dirs, files in os.walk(top):
                for name in dirs + files:
                    os.lchown(os.path.join(where, name), uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    for name, (soft, hard) in spec["limits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
except OSError as exc:
    print(f"sandbox: could not prepare the sandbox: {exc}", file=sys.stderr)
    os._exit(125)
os.execv(sys.argv[2], sys.argv[2:])
"""


@dataclass(frozen=True)
class Completed:
    """What a sandboxed command did. ``output`` is stdout+stderr (head and tail if huge)."""

    returncode: int | None  # None when killed on timeout
    output: str
    output_bytes: int
    timed_out: bool
    signal_name: str | None  # the signal that ended the child, if one did
    sandboxed: bool = True
    warning: str | None = None  # set when it ran without the sandbox, and why
    channel: bytes | None = None  # what the command wrote to its channel, when asked for

    @property
    def clipped(self) -> bool:
        """The middle of a huge output was skipped when reading it back."""
        return self.output_bytes > 2 * _READ_BACK

    @property
    def out_of_memory(self) -> bool:
        return "MemoryError" in self.output or "Cannot allocate memory" in self.output

    @property
    def setup_failed(self) -> bool:
        return self.returncode == _SETUP_FAILED and "sandbox: could not prepare" in self.output


def bwrap_status() -> tuple[str | None, str]:
    """(path to a working bwrap or None, why not)."""
    path = shutil.which(BWRAP)
    if path is None:
        return None, f"bubblewrap ({BWRAP}) is not installed"
    return _probe(path, os.geteuid() == 0)


@functools.lru_cache(maxsize=4)
def _probe(path: str, as_root: bool) -> tuple[str | None, str]:
    argv = [path, *_namespace_flags(as_root), "--ro-bind", "/", "/", "--proc", "/proc", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, check=False, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bwrap could not run: {exc}"
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
        return None, f"bwrap cannot create namespaces here: {reason[0]}"
    return path, "ok"


def _namespace_flags(as_root: bool) -> list[str]:
    # As root, a user namespace would map the sandbox to uid 0 outside, which the kernel
    # exempts from RLIMIT_NPROC; so root unshares everything else and the shim drops to an
    # unprivileged uid. Without root, the user namespace is what makes bwrap work at all.
    if as_root:
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try"]  # fmt: skip
    return ["--unshare-all"]


def run_limited(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout_s: float,
    memory_mb: int,
    env: Mapping[str, str] | None = None,
    support: Path | None = None,
    channel: bool = False,
) -> Completed:
    """Run ``argv`` on a copy of ``cwd`` in the sandbox; never raises for what the child does.

    ``support`` is a host directory shown read-only at ``SUPPORT_TOKEN``; ``env`` is the whole
    environment the command gets.
    """
    bwrap, reason = bwrap_status()
    warning = None
    if bwrap is None:
        warning = (
            f"WARNING: {reason}: this ran WITHOUT a sandbox (resource limits only; it could "
            "read your files, use the network and leave processes behind)"
        )
        log.warning("%s", warning)
    paths = {WORKDIR_TOKEN: _WORK, SUPPORT_TOKEN: _SUPPORT}
    if bwrap is None:
        paths = {WORKDIR_TOKEN: str(cwd), SUPPORT_TOKEN: str(support or "")}
    inner_env = {k: _fill(v, paths) for k, v in (env or {}).items()}
    command = [_fill(a, paths) for a in argv]
    limits = _limits(memory_mb, max(1, int(timeout_s) + 1))
    read_end, write_end = os.pipe() if channel else (-1, -1)
    if channel:
        inner_env[CHANNEL_ENV] = str(write_end)
    try:
        if bwrap is None:
            full = [sys.executable, "-c", _SHIM, _shim_spec(False, limits), *command]
            done = _spawn(full, cwd, inner_env, timeout_s, write_end)
        else:
            outer = _bwrap_argv(bwrap, cwd, support, inner_env)
            full = [*outer, "--", sys.executable, "-c", _SHIM, _shim_spec(True, limits), *command]
            done = _spawn(full, cwd, {}, timeout_s, write_end)
        write_end = -1  # _spawn closed it
        message = _drain(read_end) if channel else None
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    return dataclasses.replace(done, sandboxed=bwrap is not None, warning=warning, channel=message)


def _shim_spec(sandboxed: bool, limits: dict[str, tuple[int, int]]) -> str:
    """What the shim does before exec: copy the workdir in, drop root, set the limits."""
    spec: dict[str, object] = {"copy": None, "uid": None, "own": [], "limits": limits}
    if sandboxed:
        # a uid of its own per call, so RLIMIT_NPROC counts this sandbox's processes only
        uid = random.randint(200_000, 1_999_999) if os.geteuid() == 0 else None
        spec.update(copy=[_SOURCE, _WORK], uid=uid, own=[_WORK, _TMP])
    return json.dumps(spec)


def run_worker(
    argv: Sequence[str], cwd: Path, *, timeout_s: float, env: Mapping[str, str]
) -> Completed:
    """Run our own worker program (it sets its own limits first): no sandbox, no shim."""
    return _spawn(list(argv), cwd, dict(env), timeout_s, -1)


def _fill(text: str, paths: Mapping[str, str]) -> str:
    for token, path in paths.items():
        text = text.replace(token, path)
    return text


def _limits(memory_mb: int, cpu_s: int) -> dict[str, tuple[int, int]]:
    memory = memory_mb * 1024 * 1024
    return {
        "RLIMIT_AS": (memory, memory),
        "RLIMIT_CPU": (cpu_s, cpu_s + 1),
        "RLIMIT_FSIZE": (MAX_CAPTURED_BYTES, MAX_CAPTURED_BYTES),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_NPROC": (MAX_PROCESSES, MAX_PROCESSES),
        "RLIMIT_NOFILE": (MAX_OPEN_FILES, MAX_OPEN_FILES),
    }


def _bwrap_argv(bwrap: str, cwd: Path, support: Path | None, env: Mapping[str, str]) -> list[str]:
    as_root = os.geteuid() == 0
    args = [bwrap, *_namespace_flags(as_root), "--die-with-parent", "--new-session"]
    if as_root:
        args += ["--cap-drop", "ALL"]
        args += [a for cap in ("SETUID", "SETGID", "CHOWN") for a in ("--cap-add", f"CAP_{cap}")]
    args += _system_binds()
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(DISK_QUOTA_BYTES), "--tmpfs", _ROOT]
    args += ["--perms", "0700", "--dir", _WORK, "--perms", "1777", "--dir", _TMP]
    args += ["--symlink", _TMP, "/tmp", "--ro-bind", str(cwd.resolve()), _SOURCE]
    if support is not None:
        args += ["--ro-bind", str(support.resolve()), _SUPPORT]
    args += ["--chdir", _WORK, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    roots = python_roots()
    args += _parents([*roots, _SOURCE, _SUPPORT])
    for path in roots:
        args += ["--ro-bind", path, path]
    return args


def _parents(paths: Sequence[str]) -> list[str]:
    # bwrap would create missing parents as 0700 root, which the dropped uid cannot cross
    made: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in made and not str(parent).startswith(_SYSTEM_DIRS):
                made.append(str(parent))
    return [a for parent in made for a in ("--perms", "0755", "--dir", parent)]


def python_roots() -> list[str]:
    """The Python install, the venv and its site-packages: what the command may import."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots |= {p for p in sys.path if "-packages" in p and os.path.isdir(p)}
    found = sorted(os.path.realpath(p) for p in roots if os.path.isdir(p))
    inside = ("/usr/",)  # already bound as part of the system
    # keep only outermost directories, so no bind hides another
    kept: list[str] = []
    for path in found:
        if path.startswith(inside) or any(path.startswith(k + "/") for k in kept):
            continue
        kept.append(path)
    return kept


def _spawn(
    argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float, channel_fd: int
) -> Completed:
    """Start ``argv`` in its own session, wait up to ``timeout_s``, then kill its group."""
    try:
        with tempfile.TemporaryFile(prefix="shardscope-out-") as sink:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                pass_fds=(channel_fd,) if channel_fd >= 0 else (),
            )
            if channel_fd >= 0:
                os.close(channel_fd)  # else the reader would wait for our own end
                channel_fd = -1
            timed_out = _wait(proc, timeout_s)
            output, size = _read_back(sink)
    finally:
        if channel_fd >= 0:
            os.close(channel_fd)
    code = None if timed_out else proc.returncode
    sig = signal.Signals(-code).name if code is not None and code < 0 else None
    return Completed(code, output, size, timed_out, sig)


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    _kill_group(proc)  # on timeout, and stragglers the child left running in its group
    return timed_out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _drain(fd: int) -> bytes:
    """What is in the channel now (a daemon left behind unsandboxed may hold it open)."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    with contextlib.suppress(BlockingIOError):
        while size <= MAX_CHANNEL_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def _read_back(sink: IO[bytes]) -> tuple[str, int]:
    size = sink.seek(0, os.SEEK_END)
    sink.seek(0)
    if size <= 2 * _READ_BACK:
        return sink.read().decode("utf-8", errors="replace"), size
    head = sink.read(_READ_BACK)
    sink.seek(size - _READ_BACK)
    tail = sink.read()
    skipped = f"\n[... {size - 2 * _READ_BACK:,} bytes of output skipped ...]\n"
    return head.decode("utf-8", errors="replace") + skipped + tail.decode(
        "utf-8", errors="replace"
    ), size


def child_env(workdir: str = WORKDIR_TOKEN) -> dict[str, str]:
    """A small environment for code the model wrote: nothing from ours but PATH and locale."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ})
    env.update(
        HOME=workdir,
        TMPDIR="/tmp",
        USER="sandbox",
        LOGNAME="sandbox",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONIOENCODING="utf-8",
    )
    return env
