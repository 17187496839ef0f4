"""run_tests runs pytest in a sandboxed subprocess: timeouts, memory caps, output caps."""

from __future__ import annotations

import uuid
from pathlib import Path

from shardscope.scaffolds.tools import ToolContext, default_registry
from tests.test_sandbox_escape import gone_soon, watch_for


def _run(workdir: Path, **kwargs):
    ctx = ToolContext(
        workdir=workdir,
        max_output_chars=kwargs.pop("max_output_chars", 1000),
        # Generous: the tool's timeout is not under test here, and pytest itself takes seconds
        # to start on a busy machine.
        timeout_s=kwargs.pop("timeout_s", 300.0),
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
    # Neither loop ends by itself: the tool returns only if it kills both. The timeout also
    # covers pytest's start-up inside the sandbox, which on a busy machine can outlast a short
    # one before the grandchild exists: then try a longer one.
    for timeout_s in (4.5, 30.0, 120.0):
        with watch_for(marker) as seen:
            result = _run(tmp_path, timeout_s=timeout_s)
        assert not result.ok and result.error_type == "timeout"
        assert f"{timeout_s:g} s" in (result.error_message or "")
        if seen:
            break
    assert seen, "the grandchild never started: the test shows nothing"
    assert gone_soon(marker), "the grandchild survived the timeout kill"


def test_memory_hog_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "test_hog.py").write_text(
        "def test_hog():\n"
        "    blocks = []\n"
        "    while True:\n"
        "        blocks.append(bytearray(50 * 1024 * 1024))\n"
    )
    result = _run(tmp_path, memory_mb=256)
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
