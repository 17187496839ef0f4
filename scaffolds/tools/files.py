"""File tools confined to the episode's working directory.

Every path is relative to the workdir. Absolute paths, ``..`` and symbolic links that lead
outside are refused before anything is opened.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult, truncate
from shardscope.scaffolds.types import ToolSpec

MAX_WRITE_CHARS = 200_000
MAX_READ_BYTES = 2_000_000
MAX_LISTED = 500
_HIDDEN_DIRS = frozenset({"__pycache__", ".pytest_cache", ".git"})


class PathRefused(Exception):
    """A path the model may not use; the message says why and what to do instead."""


def confined_path(workdir: Path, raw: str) -> Path:
    """``raw`` resolved inside ``workdir``; raises PathRefused when it would leave it."""
    text = raw.strip()
    if not text or text == ".":
        return workdir.resolve()
    if "\x00" in text:
        raise PathRefused("the path contains a NUL character")
    pure = PurePosixPath(text)
    if pure.is_absolute() or text.startswith("~"):
        raise PathRefused(
            f"absolute paths are not allowed ({raw!r}); use a path relative to the working "
            "directory, e.g. 'ledger/tax.py'"
        )
    if ".." in pure.parts:
        raise PathRefused(
            f"'..' is not allowed in paths ({raw!r}); stay inside the working directory"
        )
    root = workdir.resolve()
    resolved = (root / pure).resolve()
    if not resolved.is_relative_to(root):
        raise PathRefused(f"{raw!r} leads outside the working directory (through a symbolic link)")
    return resolved


def _relative(path: Path, ctx: ToolContext) -> str:
    return path.relative_to(ctx.workdir.resolve()).as_posix()


class ReadFile(Tool):
    spec = ToolSpec(
        name="read_file",
        description="Read a text file from the working directory (path relative to it).",
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1, "description": "e.g. ledger/tax.py"}
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            path = confined_path(ctx.workdir, arguments["path"])
        except PathRefused as exc:
            return ToolResult.fail("path_refused", str(exc))
        if path.is_dir():
            return ToolResult.fail(
                "is_a_directory", f"{arguments['path']!r} is a directory; use list_files"
            )
        if not path.is_file():
            return ToolResult.fail(
                "file_not_found", f"no file {arguments['path']!r}; use list_files to see the files"
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_READ_BYTES + 1)
        text, cut = truncate(data.decode("utf-8", errors="replace"), ctx.max_output_chars)
        return ToolResult(True, text, truncated=cut or len(data) > MAX_READ_BYTES)


class WriteFile(Tool):
    spec = ToolSpec(
        name="write_file",
        description=(
            "Write a text file in the working directory, replacing it if it exists. Give the "
            "whole new content of the file."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1, "description": "e.g. ledger/tax.py"},
                "content": {"type": "string", "description": "the complete file content"},
            },
            "required": ["path", "content"],
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        content = arguments["content"]
        if len(content) > MAX_WRITE_CHARS:
            return ToolResult.fail(
                "content_too_large",
                f"content has {len(content):,} characters; the limit is {MAX_WRITE_CHARS:,}",
            )
        try:
            path = confined_path(ctx.workdir, arguments["path"])
        except PathRefused as exc:
            return ToolResult.fail("path_refused", str(exc))
        if path.is_dir():
            return ToolResult.fail("is_a_directory", f"{arguments['path']!r} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        return ToolResult(True, f"wrote {len(content):,} characters to {_relative(path, ctx)}")


class ListFiles(Tool):
    spec = ToolSpec(
        name="list_files",
        description="List the files in the working directory (or one of its subdirectories).",
        parameters={
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "default": ".",
                    "description": "a subdirectory; default: all",
                }
            },
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            top = confined_path(ctx.workdir, arguments.get("path", "."))
        except PathRefused as exc:
            return ToolResult.fail("path_refused", str(exc))
        if not top.is_dir():
            return ToolResult.fail(
                "not_a_directory", f"{arguments.get('path')!r} is not a directory"
            )
        lines = _listing(top, ctx)
        if not lines:
            return ToolResult(True, "(no files)")
        shown = lines[:MAX_LISTED]
        more = len(lines) - len(shown)
        note = f"\n[... {more} more entries not shown]" if more else ""
        return ToolResult(True, "\n".join(shown) + note, truncated=bool(more))


def _listing(top: Path, ctx: ToolContext) -> list[str]:
    lines: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in _HIDDEN_DIRS)
        base = Path(dirpath)
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            entry = base / name
            rel = entry.relative_to(ctx.workdir.resolve()).as_posix()
            if entry.is_symlink():
                lines.append(f"{rel} (symbolic link)")
            else:
                lines.append(f"{rel} ({entry.stat().st_size:,} bytes)")
    return sorted(lines)
