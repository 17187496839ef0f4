"""The full benchmark run's order, its results file and its summary (no model calls here).

The full run goes through one seeded permutation of every item, stratified by suite: each
suite's items are shuffled, then interleaved so that any prefix holds every suite in
proportion to its size (within one item). A run stopped anywhere is therefore a stratified
random sample of the full run, and its per-suite accuracy an unbiased estimate of the full
suite's, whose interval (Wilson, with the finite-population correction) shrinks to the
point as the suite completes.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardscope.analysis.stats import wilson

Item = tuple[str, str]  # (suite, task id)


def stratified_order(items: Mapping[str, Sequence[str]], seed: int) -> list[Item]:
    """Every (suite, task id), as a seeded permutation of which every prefix is a
    proportionally stratified sample (systematic allocation: item r of suite s of size n
    sits at (r + 0.5) / n, ties broken by a seeded draw)."""
    rng = random.Random(seed)
    keyed: list[tuple[float, float, str, str]] = []
    for suite in sorted(items):
        ids = sorted(items[suite])
        rng.shuffle(ids)
        keyed.extend(((r + 0.5) / len(ids), rng.random(), suite, task) for r, task in enumerate(ids))
    return [(suite, task) for _, _, suite, task in sorted(keyed)]


def read_results(path: Path) -> list[dict[str, Any]]:
    """The recorded lines; a line that is not a JSON object is an error naming it."""
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: not a JSON object")
        rows.append(row)
    return rows


def append_results(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append rows as JSON lines (flushed per line, so a kill loses at most one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("a", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\n")
            out.flush()
            count += 1
    return count


def done_keys(rows: Iterable[Mapping[str, Any]], scaffold_hash: str) -> set[tuple[str, str, str]]:
    """(model, suite, task id) recorded under this scaffold hash."""
    return {(r["model"], r["suite"], r["task_id"]) for r in rows if r.get("scaffold_hash") == scaffold_hash}


@dataclass(frozen=True)
class Cell:
    """One model x suite of the results: a sample of ``done`` of ``total`` items."""

    model: str
    suite: str
    done: int
    total: int
    successes: int
    wall_s: float  # summed seconds of the recorded episodes

    @property
    def accuracy(self) -> float:
        return self.successes / self.done if self.done else math.nan

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson's interval on the effective sample size n (N - 1) / (N - n): sampling
        without replacement from the suite, so a complete suite has no sampling error."""
        if not self.done:
            return (0.0, 1.0)
        if self.done >= self.total:
            return (self.accuracy, self.accuracy)
        n_eff = self.done * (self.total - 1) / (self.total - self.done)
        return wilson(self.accuracy, n_eff, z)

    @property
    def remaining_h(self) -> float:
        """Hours left at this cell's mean seconds per item (nan before the first item)."""
        if not self.done:
            return math.nan
        return self.wall_s / self.done * (self.total - self.done) / 3600


def cells(rows: Iterable[Mapping[str, Any]], totals: Mapping[str, int], models: Sequence[str],
          scaffold_hash: str) -> list[Cell]:
    """A cell per model x suite, from the rows recorded under ``scaffold_hash`` (the last
    line of an item wins, should one be recorded twice)."""
    latest: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for row in rows:
        if row.get("scaffold_hash") == scaffold_hash:
            latest[row["model"], row["suite"], row["task_id"]] = row
    out = []
    for model in models:
        for suite, total in totals.items():
            mine = [r for (m, s, _), r in latest.items() if m == model and s == suite]
            out.append(Cell(model, suite, len(mine), total,
                            sum(r["outcome"] == "success" for r in mine),
                            sum(float(r["wall_s"]) for r in mine)))
    return out


def summary_lines(table: Sequence[Cell], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The summary as printed: a line per cell, then per model and overall hours left."""
    lines = [f"{'model':30s} {'suite':17s} {'done':>9s} {'accuracy':>8s}  95% interval    "
             f"{'s/item':>6s} {'left h':>6s}"]
    for c in table:
        low, high = c.interval()
        acc = f"{c.accuracy:8.3f}" if c.done else f"{'-':>8s}"
        per = f"{c.wall_s / c.done:6.1f}" if c.done else f"{'-':>6s}"
        left = f"{c.remaining_h:6.1f}" if c.done else f"{'?':>6s}"
        lines.append(f"{c.model:30s} {c.suite:17s} {c.done:4d}/{c.total:<4d} {acc}  "
                     f"[{low:.3f}, {high:.3f}] {per} {left}")
    for model in dict.fromkeys(c.model for c in table):
        mine = [c for c in table if c.model == model]
        known = [c.remaining_h for c in mine if c.done]
        unknown = sum(c.total for c in mine if not c.done)
        lines.append(f"{model}: {sum(c.done for c in mine)}/{sum(c.total for c in mine)} items, "
                     f"{sum(c.wall_s for c in mine) / 3600:.2f} h recorded, about "
                     f"{sum(known):.1f} h left" + (f" (+ {unknown} items of unmeasured suites)"
                                                   if unknown else ""))
    loads = [float(x) for r in rows for x in (r.get("load_start"), r.get("load_end")) if x is not None]
    if loads:
        lines.append(f"load average (1 min) while recording: {min(loads):.1f} - {max(loads):.1f}; "
                     "hours left assume the same load")
    return lines
