"""Launch an ordinary Dagster run as `dagster asset materialize` does, with its log in a file.

The run is Dagster's own CLI in a child process, so it is recorded in the instance (DAGSTER_HOME)
and shows in the UI like any other run; this process only follows it through the instance.
"""

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import dagster as dg

from nyc_collisions_dagster.raw.recording import BATCHED_INSTANCE

DEFINITIONS_MODULE = "nyc_collisions_dagster.definitions"
_RANGE_START, _RANGE_END = (
    "dagster/asset_partition_range_start",
    "dagster/asset_partition_range_end",
)
_PARTITION = "dagster/partition"


@dataclass(frozen=True)
class Launch:
    """One `dagster asset materialize` command: the assets and the partition or the range."""

    assets: Sequence[str]
    partition: str | None = None
    partition_range: tuple[str, str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def arguments(self) -> list[str]:
        selection = ["--select", ",".join(self.assets)]
        if self.partition_range is not None:
            return [*selection, "--partition-range", "...".join(self.partition_range)]
        if self.partition is not None:
            return [*selection, "--partition", self.partition]
        return selection

    def tags(self) -> dict[str, str]:
        """The tags Dagster gives the run, by which it is found in the instance."""
        if self.partition_range is not None:
            return dict(zip((_RANGE_START, _RANGE_END), self.partition_range, strict=True))
        return {_PARTITION: self.partition} if self.partition is not None else {}


class Running:
    """A launched command: its process, and its run once the instance holds it."""

    def __init__(self, launch: Launch, process: subprocess.Popen[bytes], since: datetime) -> None:
        self.launch, self.process, self.since = launch, process, since
        self.run_id: str | None = None

    def find_run(self, instance: dg.DagsterInstance) -> str | None:
        """The run this command created: the newest since its start with its tags and assets."""
        if self.run_id is None:
            wanted = {dg.AssetKey.from_user_string(a) for a in self.launch.assets}
            for run in instance.get_runs(
                filters=dg.RunsFilter(tags=self.launch.tags(), created_after=self.since), limit=5
            ):
                if set(run.asset_selection or ()) == wanted:
                    self.run_id = run.run_id
                    break
        return self.run_id

    def finished(self) -> bool:
        return self.process.poll() is not None


@contextmanager
def launched(launch: Launch, log: IO[bytes] | None) -> Iterator[Running]:
    """Start the command, its output to `log` (None: this terminal), and end it on the way out.

    A Ctrl-C reaches the child too, which stops its run as Dagster does; the child is ended here
    only if this process leaves for another reason.
    """
    # Unless the user's environment says otherwise, a range's days are recorded a batch at a
    # time (raw/recording.py).
    env = {**BATCHED_INSTANCE, **os.environ, **launch.env}
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        DEFINITIONS_MODULE,
        *launch.arguments(),
    ]
    since = datetime.now(timezone.utc)
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT if log else None, env=env
    )
    try:
        yield Running(launch, process, since)
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait()
