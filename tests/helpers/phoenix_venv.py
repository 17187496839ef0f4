"""The venv that runs a real Phoenix server for tests/test_phoenix_real.py, built once per machine.

arize-phoenix pins its own versions of OpenTelemetry, protobuf, pydantic, pandas, ... so it
never goes into the project's venv: it gets a venv of its own, made from the frozen
``phoenix-requirements.txt`` beside this file. The venv lives outside the work tree and outside
HOME (tests isolate HOME), in ``$TMPDIR/shardscope-test-phoenix-<uid>/<hash of the
requirements>``, like the assembled model weights (tests/conftest.py): a fresh clone on the same
machine reuses it, a changed requirements file builds a new one. A build holds a file lock (two
pytest processes never build at once) and writes its stamp last (an interrupted build is redone).

Standard library only: ``.ci/run`` runs this file with the system Python before the test suite
(``python3 tests/helpers/phoenix_venv.py``), so the suite's test finds the venv ready.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("phoenix-requirements.txt")
STAMP = ".shardscope-built"


def venv_dir() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"shardscope-test-phoenix-{os.getuid()}" / digest


def phoenix_python(log: Path | None = None) -> Path:
    """The Phoenix venv's interpreter, building the venv first if it is missing."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if (venv / STAMP).exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait for it
        if not (venv / STAMP).exists():
            _build(venv, log)
    return python


def _build(venv: Path, log: Path | None) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")}
    python = venv / "bin" / "python"
    steps = [
        [_base_python(), "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--no-input", "-r", str(REQUIREMENTS)],
    ]
    out = open(log, "a") if log is not None else None  # noqa: SIM115 - closed below
    try:
        for step in steps:
            done = subprocess.run(step, env=env, stdout=out or subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, check=False)
            if done.returncode != 0:
                tail = (done.stdout or "")[-4000:] if out is None else f"see {log}"
                raise RuntimeError(f"building the Phoenix venv failed at {step[:3]}: {tail}")
    finally:
        if out is not None:
            out.close()
    (venv / STAMP).write_text(f"{time.monotonic() - started:.1f} s\n")


def _base_python() -> str:
    """A plain interpreter for ``-m venv``: the base of the running venv, if it is one."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else sys.executable


if __name__ == "__main__":
    built_before = (venv_dir() / STAMP).exists()
    python = phoenix_python()
    how = "already built" if built_before else f"built in {(venv_dir() / STAMP).read_text().strip()}"
    print(f"phoenix venv: {python.parent.parent} ({how})")
