"""Stored episodes whose scaffold has changed since they ran (its code, prompts or
parameters hash differently now): ``--resume`` and baseline reuse find them here instead of
silently running them again."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from shardscope.scaffolds.agents.registry import get_scaffold
from shardscope.scaffolds.runner.matrix import EpisodeSpec, MatrixSpec
from shardscope.scaffolds.tasks.model import Ablation, AblationMode


@dataclass(frozen=True)
class HashChange:
    """Stored cells of one scaffold under an older hash, with no episode under the current."""

    scaffold: str
    stored: str  # the hash the cells were stored under
    current: str  # the hash of the scaffold's code now
    keys: frozenset[str]  # the cells' episode keys under the current hash

    @property
    def episodes(self) -> int:
        return len(self.keys)


def current_hashes(spec: MatrixSpec) -> dict[str, str]:
    """Each of the matrix's scaffolds' hash with the current code (and its parameters)."""
    return {name: get_scaffold(name, spec.scaffold_params.get(name)).identity for name in spec.scaffolds}


def cell_key(cell: Mapping[str, Any], scaffold_hash: str) -> str:
    """The episode key of a stored cell (a row of the ``episodes`` view) under ``scaffold_hash``."""
    shard = cell.get("ablation_shard")
    ablation = Ablation(shard, cast(AblationMode, cell["ablation_mode"])) if shard else None
    return EpisodeSpec(cell["suite"], cell["task_id"], cell["scaffold"], scaffold_hash,
                       cell["model"], int(cell["seed"]), ablation).key


def hash_changes(cells: Iterable[Mapping[str, Any]], current: Mapping[str, str],
                 have: Collection[str] = ()) -> list[HashChange]:
    """The ``cells`` stored under another hash than ``current`` gives their scaffold whose key
    under the current hash is not in ``have``, grouped by scaffold and stored hash."""
    groups: dict[tuple[str, str], set[str]] = {}
    for cell in cells:
        now, stored = current.get(cell["scaffold"]), cell["scaffold_hash"]
        if now is None or stored is None or stored == now:
            continue
        key = cell_key(cell, now)
        if key not in have:
            groups.setdefault((cell["scaffold"], stored), set()).add(key)
    return [HashChange(scaffold, stored, current[scaffold], frozenset(keys))
            for (scaffold, stored), keys in sorted(groups.items())]
