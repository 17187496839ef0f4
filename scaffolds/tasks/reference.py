"""Reference solutions: what a perfect agent would do, for self-tests and oracle runs."""

from __future__ import annotations

from shardscope.scaffolds.tasks import world as W
from shardscope.scaffolds.tasks.model import Edit, TaskInstance
from shardscope.scaffolds.tasks.suite import Task


def apply_reference_fix(task: Task, instance: TaskInstance) -> None:
    """Undo the task's patch in the instance's files (the reference fix of a bugfix task)."""
    for edit in reversed(task.patch):
        W.edit_file(instance.tool_context.workdir / str(edit.file), [Edit(edit.replace, edit.find)])
