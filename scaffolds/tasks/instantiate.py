"""Building one episode's world from a task, with at most one shard ablated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shardscope.scaffolds.tasks import world as W
from shardscope.scaffolds.tasks.errors import AblationError, SuiteError
from shardscope.scaffolds.tasks.model import (
    ABLATION_MODES,
    Ablation,
    Edit,
    Shard,
    TaskInstance,
)
from shardscope.scaffolds.tools import ToolContext

if TYPE_CHECKING:
    from shardscope.scaffolds.tasks.suite import Task

FILES_DIR = "files"  # the tools' workdir, inside the instance root
DATASET_FILE = "dataset/dataset.duckdb"
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?])")


def instantiate(task: Task, root: Path, ablation: Ablation | None) -> TaskInstance:
    """The task's prompt, tools and tool context for one episode under ``root``."""
    target = _validated(task, ablation)
    mode = ablation.mode if ablation else None
    root.mkdir(parents=True, exist_ok=True)
    files = root / FILES_DIR
    files.mkdir(exist_ok=True)
    tools = tuple(task.tools)
    overrides: dict[str, str] = {}
    limits: dict[str, Any] = dict(task.world.limits)  # checked by the loader against ToolContext
    for shard in task.shards:
        if shard.kind == "tool_result" and shard is target:
            if mode == "removed":
                tools = tuple(t for t in tools if t != shard.params["tool"])
            else:
                overrides[shard.params["tool"]] = str(shard.replacement)
    context = ToolContext(
        workdir=files,
        corpus=_corpus(task, target, mode),
        dataset_path=_dataset(task, root, target, mode),
        tool_overrides=overrides,
        **limits,
    )
    _package(task, files, target, mode)
    present = tuple(s.name for s in task.shards if not (s is target and mode == "removed"))
    return TaskInstance(
        prompt=render_prompt(task, target, mode),
        tools=tools,
        tool_context=context,
        shards=present,
        ablation=ablation,
        task_id=task.id,
        root=root,
    )


def _validated(task: Task, ablation: Ablation | None) -> Shard | None:
    if ablation is None:
        return None
    if ablation.mode not in ABLATION_MODES:
        raise AblationError(
            f"unknown ablation mode {ablation.mode!r}; choose from {', '.join(ABLATION_MODES)}"
        )
    return task.shard(ablation.shard)


def render_prompt(task: Task, target: Shard | None, mode: str | None) -> str:
    """The prompt with each fact shard's text in its ``{placeholder}`` (ablation applied)."""
    values: dict[str, str] = {}
    for shard in task.shards:
        if shard.kind != "fact":
            continue
        if shard is target:
            values[shard.name] = "" if mode == "removed" else str(shard.replacement)
        else:
            values[shard.name] = shard.content or ""
    return tidy(task.prompt.format_map(values))


def tidy(text: str) -> str:
    """Collapse the gaps a removed fact leaves: runs of spaces, blank lines, space before '.'."""
    lines = [
        _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", line)).strip() for line in text.splitlines()
    ]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _corpus(task: Task, target: Shard | None, mode: str | None) -> dict[str, str]:
    corpus = dict(task.world.corpus)
    if target is not None and target.kind == "document":
        doc = target.params["doc"]
        if mode == "removed":
            del corpus[doc]
        else:
            corpus[doc] = W.apply_edits(corpus[doc], _edits(target))
    return corpus


def _dataset(task: Task, root: Path, target: Shard | None, mode: str | None) -> Path | None:
    if task.world.dataset_dir is None:
        return None
    path = root / DATASET_FILE
    W.build_dataset(task.world.dataset_dir, path)
    if target is not None and target.kind == "rows":
        values: Any = None if mode == "removed" else target.replacement
        changed = W.change_rows(path, target.params["table"], target.params["where"], values)
        if changed == 0:
            raise SuiteError(
                f"task {task.id!r}: shard {target.name!r}: rows where "
                f"{target.params['where']!r} match nothing in table {target.params['table']!r}"
            )
    return path


def _package(task: Task, files: Path, target: Shard | None, mode: str | None) -> None:
    if task.world.package_dir is None:
        return
    W.copy_package(task.world.package_dir, files)
    for edit in task.patch:
        W.edit_file(files / str(edit.file), [edit])
    if target is not None and target.kind == "file":
        path = files / target.params["path"]
        if mode == "removed":
            path.unlink()
        else:
            W.edit_file(path, _edits(target))


def _edits(shard: Shard) -> tuple[Edit, ...]:
    assert isinstance(shard.replacement, tuple)
    return shard.replacement
