"""What each scaffold is, and how two recorded versions of one differ: its prompts,
parameters and hash, for docs/scaffolds.md and the app's Scaffolds page."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shardscope.scaffolds.agents.registry import get_scaffold, scaffold_names


@dataclass(frozen=True)
class ScaffoldCard:
    """A scaffold as the current code defines it (default parameters)."""

    name: str
    description: str
    module: str
    params: Mapping[str, Any]
    prompts: Mapping[str, str]
    hash: str


def scaffold_cards() -> list[ScaffoldCard]:
    cards = []
    for name in scaffold_names():
        scaffold = get_scaffold(name)
        cls = type(scaffold)
        cards.append(ScaffoldCard(name, cls.description, cls.__module__,
                                  dataclasses.asdict(scaffold.params), dict(cls.prompts),
                                  scaffold.identity))
    return cards


def cards_markdown(cards: list[ScaffoldCard]) -> str:
    """The scaffolds as Markdown: description, parameter table, every prompt verbatim."""
    out = []
    for card in cards:
        out += [f"## `{card.name}`", "", card.description, "",
                f"Code: `{card.module}`.", "",
                "| parameter | default |", "|---|---|"]
        out += [f"| `{k}` | `{v}` |" for k, v in card.params.items()]
        out.append("")
        for key, text in card.prompts.items():
            out += [f"Prompt `{key}`:", "", "```text", text.rstrip("\n") or "(empty)", "```", ""]
    return "\n".join(out)


@dataclass(frozen=True)
class ScaffoldDiff:
    """How two recorded hashes of a scaffold differ: parameters changed (name -> (a, b)),
    a unified diff of each prompt that changed, and whether only the code can explain it."""

    params: Mapping[str, tuple[Any, Any]]
    prompts: Mapping[str, str]
    code_only: bool


def diff_versions(a: Mapping[str, Any], b: Mapping[str, Any]) -> ScaffoldDiff:
    """``a`` and ``b``: {"params": {...}, "prompts": {...}} as recorded with two hashes
    (prompts may be missing from stores written before they were recorded)."""
    pa, pb = _mapping(a.get("params")), _mapping(b.get("params"))
    params = {k: (pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}
    qa, qb = _mapping(a.get("prompts")), _mapping(b.get("prompts"))
    prompts = {}
    for key in sorted(set(qa) | set(qb)):
        if qa.get(key) != qb.get(key):
            prompts[key] = "\n".join(difflib.unified_diff(
                str(qa.get(key, "")).splitlines(), str(qb.get(key, "")).splitlines(),
                "a", "b", lineterm=""))
    known_prompts = bool(qa) and bool(qb)
    return ScaffoldDiff(params, prompts, code_only=not params and known_prompts and not prompts)


def _mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}
