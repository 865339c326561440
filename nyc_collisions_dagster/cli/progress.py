"""How far a run has come, per asset: partitions landed of all, rows, the newest one, time left.

On a terminal this is a rich progress display; elsewhere (CI, a log file) plain lines, at least
every 10 s and whenever an asset finishes.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_SECONDS = 10.0


@dataclass
class AssetProgress:
    """What one asset of the run has landed so far."""

    asset: str
    total: int
    partitions: set[str] = field(default_factory=set)
    rows: int = 0
    counted: bool = False  # whether its materializations give their rows (a page has none)
    newest: str = ""
    path: str = ""

    @property
    def done(self) -> bool:
        return len(self.partitions) >= self.total

    @property
    def rows_text(self) -> str:
        return f"{self.rows:>12,} rows" if self.counted else " " * 17

    def add(self, partition: str, rows: int | None, path: str) -> bool:
        """Count a landed partition; False if it was counted already."""
        if partition in self.partitions:
            return False
        self.partitions.add(partition)
        if rows is not None:
            self.rows, self.counted = self.rows + rows, True
        self.newest = max(self.newest, partition)
        self.path = path or self.path
        return True


class RunProgress:
    """The progress of one run's assets, shown as it changes."""

    def __init__(
        self,
        assets: Sequence[str],
        total: int,
        unit: str,
        out: TextIO,
        terminal: bool | None = None,
    ) -> None:
        """`terminal` forces the live display (True) or plain lines (False); None asks `out`."""
        self.assets = {name: AssetProgress(name, total) for name in assets}
        self.unit = unit
        self.started = time.monotonic()
        self._console = Console(file=out, force_terminal=terminal)
        self._plain_at = self.started
        self._shown: dict[str, int] = {}  # each asset's count on its last plain line
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._out = out

    def __enter__(self) -> "RunProgress":
        if self._console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description:<20}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TextColumn("{task.fields[rows]}"),
                TextColumn("{task.fields[newest]}"),
                TimeElapsedColumn(),
                TextColumn("elapsed"),
                TimeRemainingColumn(),
                TextColumn("left"),
                console=self._console,
            )
            self._progress.start()
            for name, asset in self.assets.items():
                self._tasks[name] = self._progress.add_task(
                    name, total=asset.total, rows=asset.rows_text, newest=""
                )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def landed(self, asset: str, partition: str, rows: int | None, path: str) -> None:
        progress = self.assets.get(asset)
        if progress is None or not progress.add(partition, rows, path):
            return
        if self._progress is not None:
            self._progress.update(
                self._tasks[asset],
                completed=len(progress.partitions),
                rows=progress.rows_text,
                newest=f"at {progress.newest}",
            )
        elif progress.done:
            self._print(progress)

    def tick(self) -> None:
        """Once PLAIN_EVERY_SECONDS have passed, a plain line for every unfinished asset that
        landed more since its last line, or has none yet: a run waiting on a slow or failing
        source prints each asset once, not a line every ten seconds."""
        now = time.monotonic()
        if self._progress is not None or now - self._plain_at < PLAIN_EVERY_SECONDS:
            return
        self._plain_at = now
        for progress in self.assets.values():
            if not progress.done and self._shown.get(progress.asset) != len(progress.partitions):
                self._print(progress)

    def _print(self, progress: AssetProgress) -> None:
        done = self._shown[progress.asset] = len(progress.partitions)
        line = f"{progress.asset:<20} {done:>5}/{progress.total} {self.unit}"
        line += f"  {progress.rows_text}"
        if progress.newest:
            line += f"  at {progress.newest}"
        if progress.done:
            line += f"  done in {self._elapsed()}"
        elif done:
            left = (time.monotonic() - self.started) * (progress.total - done) / done
            line += f"  about {timedelta(seconds=round(left))} left"
        print(line, file=self._out, flush=True)

    def _elapsed(self) -> timedelta:
        return timedelta(seconds=round(time.monotonic() - self.started))
