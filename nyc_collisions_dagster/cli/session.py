"""A command's runs: each launched, followed with its progress, and summed up; or the one sentence
that says what to fix, with Dagster's full log in a file."""

import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TextIO

import dagster as dg

from nyc_collisions_dagster.cli.failure import causes, failures
from nyc_collisions_dagster.cli.follow import follow
from nyc_collisions_dagster.cli.launch import Launch, launched
from nyc_collisions_dagster.cli.progress import AssetProgress, RunProgress
from nyc_collisions_dagster.constants import DEFAULT_SOCRATA_DOMAIN, SOCRATA_DOMAIN_ENV
from nyc_collisions_dagster.instance.orphans import fail_orphans


class RunFailed(RuntimeError):
    """A run ended without landing everything; the message is the cause to print last."""


@dataclass
class Landed:
    """A finished run: its id and what each asset landed."""

    run_id: str
    assets: dict[str, AssetProgress]


class Session:
    """One command's runs: where Dagster's log goes and where progress is shown."""

    def __init__(self, home: Path, name: str, verbose: bool, out: TextIO = sys.stdout) -> None:
        self.home, self.verbose, self.out = home, verbose, out
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.log_path = home / "logs" / f"{name}-{stamp}.log"

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def fail_orphans(self) -> None:
        """Fail the runs of the instance that were killed without a word, saying so: the pool
        slots they hold would hold back the run about to start."""
        with dg.DagsterInstance.get() as instance:
            for orphan in fail_orphans(instance):
                self.say(orphan.message)

    def land(self, launch: Launch, total: int, unit: str) -> Landed:
        """Run `launch` to its end, showing its progress; RunFailed if it did not succeed."""
        with ExitStack() as stack:
            log: IO[bytes] | None = None
            if not self.verbose:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log = stack.enter_context(self.log_path.open("ab"))
            instance = stack.enter_context(dg.DagsterInstance.get())
            running = stack.enter_context(launched(launch, log))
            progress = stack.enter_context(RunProgress(launch.assets, total, unit, self.out))
            status = follow(instance, running, progress)
            if status == 0 and running.run_id is not None:
                return Landed(running.run_id, progress.assets)
            cause = self._failure(instance, running.run_id)
        raise RunFailed(cause)

    def _failure(self, instance: dg.DagsterInstance, run_id: str | None) -> str:
        where = "above" if self.verbose else f"in {self.log_path}"
        if run_id is None:
            return f"Dagster could not start the run: its error is {where}."
        found = failures(instance, run_id)
        for failure in found:
            if failure.step and failure.outcome:
                self.say(f"  {failure.outcome}")
        self.say(f"Run {run_id} failed; Dagster's log is {where}.")
        reasons = causes(found)
        for reason in reasons[:-1]:
            self.say(reason)
        return reasons[-1] if reasons else f"The run stopped without an error: see its log {where}."


def home() -> Path:
    """DAGSTER_HOME, which the make targets set; the instance of every run."""
    path = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(path)
    return path


def source() -> str:
    return os.environ.get(SOCRATA_DOMAIN_ENV) or DEFAULT_SOCRATA_DOMAIN


def print_landed(session: Session, landed: Landed, unit: str, elapsed: timedelta) -> None:
    """Rows per asset and where their files are, with the run's id."""
    session.say(f"Run {landed.run_id} succeeded in {_duration(elapsed)}:")
    for asset in landed.assets.values():
        where = os.path.dirname(asset.path) if unit == "days" else asset.path
        count = f"{len(asset.partitions):>5} {unit:<6}"
        session.say(f"  {asset.asset:<20} {count} {asset.rows_text}   {where}")


def _duration(elapsed: timedelta) -> str:
    return str(timedelta(seconds=round(elapsed.total_seconds())))


def names_text(names: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
