"""``run --shard i/N``: a deterministic partition of a matrix by episode key.

For clusters scheduled by something other than Ray (a Slurm array, a Kubernetes indexed Job):
N processes each run ``--shard i/N`` for i in 0..N-1 and together run every episode of the
matrix exactly once. An episode belongs to shard ``h(key) mod N`` where ``h`` is the first 8
bytes of the key's SHA-256: the same on every host, Python version and process (Python's own
``hash`` is salted per process)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from shardscope.config.errors import ConfigError

MAX_SHARDS = 100_000
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, episode_key: str) -> bool:
        """Whether the episode ``episode_key`` is this shard's to run."""
        return shard_of(episode_key, self.count) == self.index


def shard_of(episode_key: str, count: int) -> int:
    """The shard (0..count-1) the episode key falls in."""
    digest = hashlib.sha256(episode_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """``"2/8"`` -> Shard(2, 8); anything else is a one-line ConfigError saying what to type."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ConfigError(f"--shard must look like i/N (0-based: 0/4 .. 3/4 for 4 shards), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"--shard {text}: N must be between 1 and {MAX_SHARDS}, got {count}")
    if index >= count:
        raise ConfigError(f"--shard {text}: i is 0-based and must be below N "
                          f"(0/{count} .. {count - 1}/{count}), got {index}")
    return Shard(index, count)
