"""run_tests runs pytest in a sandboxed subprocess: timeouts, memory caps, output caps."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from shardscope.scaffolds.tools import ToolContext, default_registry
from tests.test_sandbox_escape import gone_soon, watch_for


def _run(workdir: Path, **kwargs):
    ctx = ToolContext(
        workdir=workdir,
        max_output_chars=kwargs.pop("max_output_chars", 1000),
        timeout_s=kwargs.pop("timeout_s", 30.0),  # generous: 2 cores, heavily shared
        memory_mb=kwargs.pop("memory_mb", 256),
    )
    return default_registry().get("run_tests").run(kwargs, ctx)


def test_reports_passes_and_failures(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text(
        "def test_ok():\n    assert 1\n\ndef test_bad():\n    assert 1 == 2\n"
    )
    result = _run(tmp_path)
    assert result.ok  # failing tests are a result, not a tool error
    assert "1 failed, 1 passed" in result.output


def test_runaway_loop_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = f"shardscope-grandchild-{uuid.uuid4().hex}"
    (tmp_path / "test_loop.py").write_text(
        "import subprocess, sys\n"
        "def test_forever():\n"
        "    code = 'import time; print(1, flush=True); time.sleep(60)'\n"
        f"    child = subprocess.Popen([sys.executable, '-c', code, {marker!r}],\n"
        "                             stdout=subprocess.PIPE)\n"
        "    child.stdout.readline()  # it is up\n"
        "    while True:\n"
        "        pass\n"
    )
    with watch_for(marker) as seen:
        start = time.monotonic()
        result = _run(tmp_path, timeout_s=4.5)
    assert time.monotonic() - start < 30
    assert not result.ok and result.error_type == "timeout"
    assert "4.5 s" in (result.error_message or "")
    assert seen, "the grandchild never started: the test shows nothing"
    assert gone_soon(marker), "the grandchild survived the timeout kill"


def test_memory_hog_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "test_hog.py").write_text(
        "def test_hog():\n"
        "    blocks = []\n"
        "    while True:\n"
        "        blocks.append(bytearray(50 * 1024 * 1024))\n"
    )
    result = _run(tmp_path, memory_mb=256, timeout_s=20)
    assert not result.ok
    assert result.error_type == "memory_limit"
    assert "256 MB" in (result.error_message or "")


def test_huge_output_is_truncated_keeping_the_summary(tmp_path: Path) -> None:
    (tmp_path / "test_loud.py").write_text(
        "def test_loud():\n    print('spam ' * 400_000)\n    assert False\n"
    )
    result = _run(tmp_path, max_output_chars=1000)
    assert result.truncated
    assert len(result.output) < 1200
    assert "output truncated" in result.output
    assert "1 failed" in result.output  # the tail (pytest's summary) is kept


def test_a_given_test_file_is_run_alone(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    (tmp_path / "test_two.py").write_text("def test_two():\n    assert False\n")
    assert "1 passed" in _run(tmp_path, path="test_one.py").output
    assert _run(tmp_path, path="../etc").error_type == "path_refused"
    assert _run(tmp_path, path="test_three.py").error_type == "file_not_found"
