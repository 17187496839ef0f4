"""File tools stay inside the episode's workdir: traversal, absolute paths, symlinks refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shardscope.scaffolds.tools import ToolContext, default_registry


@pytest.fixture
def env(tmp_path: Path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret")
    (workdir / "notes.txt").write_text("hello")
    registry = default_registry()
    ctx = ToolContext(workdir=workdir, max_output_chars=200)

    def run(tool: str, **arguments):
        return registry.get(tool).run(arguments, ctx)

    return run, workdir, outside


def test_write_then_read_and_list(env) -> None:
    run, workdir, _ = env
    assert run("write_file", path="pkg/mod.py", content="X = 1\n").ok
    assert (workdir / "pkg" / "mod.py").read_text() == "X = 1\n"
    assert run("read_file", path="pkg/mod.py").output == "X = 1\n"
    listing = run("list_files").output
    assert "notes.txt" in listing and "pkg/mod.py" in listing


@pytest.mark.parametrize("path", ["../secret.txt", "pkg/../../secret.txt", "./../secret.txt"])
def test_parent_traversal_is_refused(env, path: str) -> None:
    run, _, outside = env
    for result in (run("read_file", path=path), run("write_file", path=path, content="x")):
        assert not result.ok
        assert result.error_type == "path_refused"
        assert "'..'" in (result.error_message or "")
    assert outside.read_text() == "top secret"


def test_absolute_paths_are_refused(env) -> None:
    run, _, outside = env
    result = run("read_file", path=str(outside))
    assert not result.ok and result.error_type == "path_refused"
    assert "absolute" in (result.error_message or "")
    assert not run("write_file", path="/tmp/shardscope-escape.txt", content="x").ok
    assert not Path("/tmp/shardscope-escape.txt").exists()
    assert not run("list_files", path="/etc").ok


def test_symlinks_escaping_the_workdir_are_refused(env) -> None:
    run, workdir, outside = env
    os.symlink(outside, workdir / "link.txt")
    os.symlink(outside.parent, workdir / "linkdir")
    read = run("read_file", path="link.txt")
    assert not read.ok and "symbolic link" in (read.error_message or "")
    write = run("write_file", path="linkdir/planted.txt", content="x")
    assert not write.ok and write.error_type == "path_refused"
    assert not (outside.parent / "planted.txt").exists()
    overwrite = run("write_file", path="link.txt", content="pwned")
    assert not overwrite.ok
    assert outside.read_text() == "top secret"
    assert "(symbolic link)" in run("list_files").output


def test_symlink_inside_the_workdir_is_allowed(env) -> None:
    run, workdir, _ = env
    os.symlink(workdir / "notes.txt", workdir / "alias.txt")
    assert run("read_file", path="alias.txt").output == "hello"


def test_missing_file_and_directory_errors_are_readable(env) -> None:
    run, workdir, _ = env
    missing = run("read_file", path="nope.py")
    assert missing.error_type == "file_not_found" and "list_files" in (missing.error_message or "")
    (workdir / "d").mkdir()
    assert run("read_file", path="d").error_type == "is_a_directory"


def test_huge_file_is_truncated_with_a_note(env) -> None:
    run, workdir, _ = env
    (workdir / "big.txt").write_text("z" * 10_000)
    result = run("read_file", path="big.txt")
    assert result.ok and result.truncated
    assert len(result.output) < 400
    assert "truncated" in result.output and "10,000" in result.output
