"""The tool registry: tools by name, their specs for a model, and the built-in set."""

from __future__ import annotations

from collections.abc import Iterable

from shardscope.scaffolds.tools.base import Tool, UnknownToolError
from shardscope.scaffolds.types import ToolSpec


class ToolRegistry:
    """Tools by name. ``get`` of an unknown name raises an error listing the known ones."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add ``tool``; a second tool with the same name is a bug, so it raises."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownToolError(f"unknown tool {name!r}; known tools: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self, names: Iterable[str] | None = None) -> list[ToolSpec]:
        """The specs of ``names`` in that order (all tools, sorted, when None)."""
        chosen = self.names() if names is None else list(names)
        return [self.get(name).spec for name in chosen]

    def __contains__(self, name: object) -> bool:
        return name in self._tools


def default_registry() -> ToolRegistry:
    """A registry holding every built-in tool."""
    from shardscope.scaffolds.tools.calculator import Calculator
    from shardscope.scaffolds.tools.docs import ReadDoc, SearchDocs
    from shardscope.scaffolds.tools.files import ListFiles, ReadFile, WriteFile
    from shardscope.scaffolds.tools.pytest_runner import RunTests
    from shardscope.scaffolds.tools.sql import SqlQuery

    return ToolRegistry(
        [
            Calculator(),
            SearchDocs(),
            ReadDoc(),
            SqlQuery(),
            ReadFile(),
            WriteFile(),
            ListFiles(),
            RunTests(),
        ]
    )
