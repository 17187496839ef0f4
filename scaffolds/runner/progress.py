"""A progress bar with ETA and a running tally of outcomes (on stderr)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, total: int, *, enabled: bool = True, skipped: int = 0) -> None:
        self.total = total
        self.counts: Counter[str] = Counter()
        self._bar: RichProgress | None = None
        if enabled:
            self._bar = RichProgress(
                TextColumn("[bold]episodes"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            note = f"(resuming: {skipped} already done)" if skipped else ""
            self._task = self._bar.add_task(note, total=total)

    def advance(self, episode: Any, outcome: str) -> None:
        self.counts[outcome] += 1
        if self._bar is not None:
            tally = " ".join(f"{k}:{v}" for k, v in sorted(self.counts.items()))
            self._bar.update(self._task, advance=1, description=f"{tally}  last: {episode.model} {episode.task_id}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
