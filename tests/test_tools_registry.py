"""The registry: specs, unknown tools, argument validation, overrides and truncation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shardscope.config.errors import ConfigError
from shardscope.scaffolds.tools import (
    Tool,
    ToolContext,
    ToolRegistry,
    ToolResult,
    UnknownToolError,
    default_registry,
)
from shardscope.scaffolds.types import ToolSpec

BUILTIN = [
    "calculator",
    "list_files",
    "read_doc",
    "read_file",
    "run_tests",
    "search_docs",
    "sql",
    "write_file",
]


class Echo(Tool):
    spec = ToolSpec(
        name="echo",
        description="Echo text.",
        parameters={
            "type": "object",
            "properties": {"text": {"type": "string"}, "times": {"type": "integer", "minimum": 1}},
            "required": ["text"],
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult(True, arguments["text"] * arguments.get("times", 1))


def test_default_registry_has_every_builtin_tool_with_a_valid_schema() -> None:
    registry = default_registry()
    assert registry.names() == BUILTIN
    for spec in registry.specs():
        assert spec.parameters["type"] == "object"
        assert spec.as_json_schema_tool()["function"]["name"] == spec.name
    assert [s.name for s in registry.specs(["sql", "calculator"])] == ["sql", "calculator"]


def test_unknown_tool_error_lists_the_known_tools() -> None:
    with pytest.raises(UnknownToolError, match="known tools: calculator, list_files") as info:
        default_registry().get("shell")
    assert isinstance(info.value, ConfigError)


def test_arguments_are_validated_against_the_schema(tmp_path: Path) -> None:
    tool, ctx = Echo(), ToolContext(workdir=tmp_path)
    assert tool.run({"text": "ab", "times": 2}, ctx).output == "abab"
    for bad, needle in [
        ({}, "'text' is a required property"),
        ({"text": 3}, "is not of type 'string'"),
        ({"text": "a", "times": 0}, "minimum"),
        ({"text": "a", "loud": True}, "Additional properties"),
    ]:
        result = tool.run(bad, ctx)
        assert not result.ok and result.error_type == "invalid_arguments"
        assert needle in (result.error_message or ""), result.error_message
        assert "Expected arguments: text (string), times (integer)" in (result.error_message or "")
    assert tool.run("not a dict", ctx).error_type == "invalid_arguments"  # type: ignore[arg-type]


def test_long_outputs_are_truncated_with_a_note(tmp_path: Path) -> None:
    result = Echo().run(
        {"text": "x", "times": 5000}, ToolContext(workdir=tmp_path, max_output_chars=100)
    )
    assert result.ok and result.truncated
    assert result.output.startswith("x" * 100) and "5,000 characters" in result.output


def test_tool_override_replaces_the_result(tmp_path: Path) -> None:
    ctx = ToolContext(workdir=tmp_path, tool_overrides={"calculator": "76"})
    assert default_registry().get("calculator").run({"expression": "1+1"}, ctx).output == "76"


def test_registering_a_name_twice_is_a_bug() -> None:
    registry = ToolRegistry([Echo()])
    with pytest.raises(ValueError):
        registry.register(Echo())
    assert "echo" in registry and registry.names() == ["echo"]
