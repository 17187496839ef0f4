"""Typed reading of one TOML table, with errors naming file, task and field.

Every table is read through a ``Fields``: each key is taken exactly once with its expected
type, and ``done()`` reports the keys nobody took (typos are errors, never ignored).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shardscope.scaffolds.tasks.errors import SuiteError


def display(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


class Where:
    """Where in a suite file a problem is: the file and, when known, the task."""

    def __init__(self, path: Path, task: str | None = None) -> None:
        self.path, self.task = path, task

    def for_task(self, task: str) -> Where:
        return Where(self.path, task)

    def error(self, field: str, problem: str) -> SuiteError:
        scope = f"task {self.task!r}" if self.task is not None else "suite"
        return SuiteError(f"{display(self.path)}: {scope}: {field} {problem}")


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


class Fields:
    """The keys of one table, read by type; ``prefix`` is the table's dotted path."""

    def __init__(self, table: Any, where: Where, prefix: str) -> None:
        if not isinstance(table, Mapping):
            raise where.error(prefix.rstrip("."), f"must be a table, got {_type_name(table)}")
        self.table, self.where, self.prefix = dict(table), where, prefix
        self.taken: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def error(self, key: str, problem: str) -> SuiteError:
        return self.where.error(self.field(key), problem)

    def has(self, key: str) -> bool:
        return key in self.table

    def _get(self, key: str, required: bool) -> Any:
        self.taken.add(key)
        if key not in self.table and required:
            raise self.where.error(self.field(key), "is required but missing")
        return self.table.get(key)

    def value(self, key: str, *, required: bool = False) -> Any:
        """The value under ``key`` as it is (None when absent and not required)."""
        return self._get(key, required)

    def string(self, key: str, *, required: bool = True, default: str | None = None) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        if required and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def number(
        self,
        key: str,
        *,
        required: bool = True,
        default: float | None = None,
        minimum: float | None = None,
    ) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum:g}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def strings(self, key: str, *, required: bool = False) -> tuple[str, ...] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def table_of(self, key: str, *, required: bool = False) -> Mapping[str, Any] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a table, got {_type_name(value)}")
        return value

    def tables(self, key: str, *, required: bool = True) -> list[Any]:
        value = self._get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(
                key, f"must be a list of tables ([[{self.field(key)}]]), got {_type_name(value)}"
            )
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.string(key)
        if value not in options:
            raise self.error(key, f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    def done(self) -> None:
        """Raise for the first key nobody read: a typo or a field this table does not have."""
        for key in sorted(set(self.table) - self.taken):
            allowed = sorted(self.taken)
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.error(
                key, f"is not a known field{hint} (allowed here: {', '.join(allowed)})"
            )
