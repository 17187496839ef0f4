"""Building one episode's world from a task, with at most one shard ablated."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shardscope.scaffolds.tasks import world as W
from shardscope.scaffolds.tasks.errors import AblationError, SuiteError
from shardscope.scaffolds.tasks.model import (
    ABLATION_MODES,
    Ablation,
    DeclaredTools,
    Edit,
    Shard,
    TaskInstance,
)
from shardscope.scaffolds.tools import ToolContext
from shardscope.scaffolds.types import ToolSpec

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
    declared = declared_tools(task.declared, target, mode)
    return TaskInstance(
        prompt=render_prompt(task, target, mode),
        tools=tools + declared.names(),
        tool_context=context,
        shards=present,
        ablation=ablation,
        task_id=task.id,
        root=root,
        declared=declared,
    )


def _validated(task: Task, ablation: Ablation | None) -> Shard | None:
    if ablation is None:
        return None
    if ablation.mode not in ABLATION_MODES:
        raise AblationError(
            f"unknown ablation mode {ablation.mode!r}; choose from {', '.join(ABLATION_MODES)}"
        )
    shard = task.shard(ablation.shard)
    if ablation.mode == "replaced" and shard.replacement is None:
        raise AblationError(
            f"task {task.id!r}: shard {shard.name!r} declares no replacement; ablate it with "
            "mode 'removed'"
        )
    return shard


def render_prompt(task: Task, target: Shard | None, mode: str | None) -> str:
    """The prompt with each fact shard's text in its ``{placeholder}`` (ablation applied)."""
    values: dict[str, str] = {}
    for shard in task.shards:
        if shard.kind != "fact":
            continue
        if shard is target:
            removed = str(shard.params.get("removed", ""))
            values[shard.name] = removed if mode == "removed" else str(shard.replacement)
        else:
            values[shard.name] = shard.content or ""
    return tidy(task.prompt.format_map(values))


def tidy(text: str) -> str:
    """Collapse the gaps a removed fact leaves: runs of spaces, blank lines, space before '.'.

    Lines inside ``` fences are code and kept as they are (indentation matters there)."""
    out: list[str] = []
    in_code = False
    for raw in text.splitlines():
        fence = raw.strip().startswith("```")
        if in_code and not fence:
            out.append(raw.rstrip())
            continue
        in_code = in_code != fence
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", raw)).strip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def declared_tools(declared: DeclaredTools, target: Shard | None, mode: str | None) -> DeclaredTools:
    """The task's declared functions with a "function" shard's part removed or replaced."""
    if target is None or target.kind != "function":
        return declared
    name = target.params["function"]
    functions: list[ToolSpec] = []
    for spec in declared.functions:
        if spec.name != name:
            functions.append(spec)
        elif target.params["field"] != "whole" or mode != "removed":
            functions.append(_ablate_function(spec, target, mode))
    return replace(declared, functions=tuple(functions))


def _ablate_function(spec: ToolSpec, shard: Shard, mode: str | None) -> ToolSpec:
    text = None if mode == "removed" else str(shard.replacement)
    part = shard.params["field"]
    if part in ("description", "whole"):
        return replace(spec, description=text or "")
    parameters = copy.deepcopy(spec.parameters)
    prop = parameters["properties"][shard.params["param"]]
    if part == "param":
        if text is None:
            prop.pop("description", None)
        else:
            prop["description"] = text
    else:  # hints: the enum list and the default value
        for key in ("enum", "default"):
            prop.pop(key, None)
        if text is not None:
            prop["description"] = f"{prop.get('description', '')} {text}".strip()
    return replace(spec, parameters=parameters)


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
