"""Writing suite files (TOML, docs/tasks.md) from data: what the benchmark importers emit.

Only what suites need: strings, numbers, booleans, inline tables, string lists, and
``[[tasks]]`` / ``[[tasks.shards]]`` tables. Nested benchmark data (JSON schemas, answers)
is written as a JSON string, which keeps nulls and nesting exactly (TOML has no null).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Table = Mapping[str, Any]


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, but DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else toml_string(key)


def as_json(value: Any) -> str:
    """Nested data as one JSON string value (see the module docstring)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def suite_toml(head: Table, tasks: Sequence[tuple[Table, Sequence[Table]]], comment: str = "") -> str:
    """The file: ``[suite]`` from ``head``, then each task with its shards."""
    lines = [f"# {line}" if line else "#" for line in comment.splitlines()]
    lines += ["", "[suite]", *_pairs(head)]
    for task, shards in tasks:
        lines += ["", "[[tasks]]", *_pairs(task)]
        for shard in shards:
            lines += ["", "[[tasks.shards]]", *_pairs(shard)]
    return "\n".join(lines).lstrip("\n") + "\n"


def _pairs(table: Table) -> list[str]:
    return [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items() if v is not None]
