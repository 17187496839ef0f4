"""Scaffolds by name: the built-in ones, and any a user registers.

The built-in scaffolds are listed here explicitly (importing them is what this module is
for), so the contract in :mod:`shardscope.scaffolds.agents.base` never imports its
implementations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shardscope.config.errors import ConfigError
from shardscope.scaffolds.agents.base import Scaffold, make_params
from shardscope.scaffolds.agents.plan_execute import PlanAndExecute
from shardscope.scaffolds.agents.react_text import TextReAct
from shardscope.scaffolds.agents.react_tools import ToolCallingReAct

BUILTIN_SCAFFOLDS: tuple[type[Scaffold], ...] = (ToolCallingReAct, TextReAct, PlanAndExecute)

_REGISTRY: dict[str, type[Scaffold]] = {cls.name: cls for cls in BUILTIN_SCAFFOLDS}


def register(cls: type[Scaffold]) -> type[Scaffold]:
    """Make a scaffold class available by its name (usable as a class decorator)."""
    known = _REGISTRY.get(cls.name)
    if known is not None and known is not cls:
        raise ConfigError(f"a scaffold named {cls.name!r} is already registered ({known.__qualname__})")
    _REGISTRY[cls.name] = cls
    return cls


def scaffold_names() -> list[str]:
    return sorted(_REGISTRY)


def get_scaffold(name: str, overrides: Mapping[str, Any] | None = None) -> Scaffold:
    """The scaffold registered as ``name``, with parameter overrides applied and checked."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"unknown scaffold {name!r}; known scaffolds: {', '.join(scaffold_names())}")
    return cls(make_params(cls, overrides or {}))
