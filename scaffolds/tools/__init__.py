"""Tools a model can call: a registry of JSON-schema specs and the built-in tools.

``default_registry()`` holds them all: calculator, search_docs, read_doc, sql, read_file,
write_file, list_files, run_tests. See docs/tools.md.
"""

from shardscope.scaffolds.tools.base import (
    DEFAULT_MAX_OUTPUT_CHARS,
    Tool,
    ToolContext,
    ToolResult,
    UnknownToolError,
    truncate,
)
from shardscope.scaffolds.tools.registry import ToolRegistry, default_registry

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "UnknownToolError",
    "default_registry",
    "truncate",
]
