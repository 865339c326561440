"""Bookkeeping benchmark: what recording a day costs in Dagster's event log, with Dagster's stock
event log storages and with the project's pooled ones, on SQLite and on PostgreSQL.

    python -m benchmarks bookkeeping             # 365 days, about 4 minutes: docs/performance/
    python -m benchmarks bookkeeping --days 30   # a smoke test, printed only

Each case runs benchmarks/bookkeeping_assets.py's null asset, which yields one materialization
per day as the raw assets do, through `dagster asset materialize` on a fresh instance: once over
one day, once over the range. Their difference, divided by the days between, is the cost of a
recorded day; the rest (Python, loading definitions, planning, a step) cancels out. The cases
run in turns, so that a shared machine's load falls on all of them alike. PostgreSQL is Debian's
server with its default durability (a commit is flushed to disk), as SQLite's commits are.
"""

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from benchmarks import harness
from benchmarks.instances import SETTINGS_NAMES, Instances, Settings, instances
from benchmarks.report import Target
from nyc_collisions_dagster.raw.recording import MAX_BATCH_DAYS

ASSETS = harness.REPO / "benchmarks" / "bookkeeping_assets.py"
FIRST_DAY = date(2024, 1, 1)
TARGET_MS = 3.0  # a recorded day, on either database, with the pooled storages


@dataclass(frozen=True)
class Case:
    storage: str  # "sqlite" or "postgres"
    pooled: bool
    settings: Settings
    # The batched path for comparison: the asset returns one output over the range, and Dagster
    # records its days at the end, a batch at a time (settings.batch): no progress during the
    # run, and no day recorded if it is killed.
    batched: bool = False
    # The project's group commit: the days written since the body last looked, recorded as one
    # batch of events (raw/recording.py), stored whole when settings.batch is set.
    grouped: bool = False

    @property
    def asset(self) -> str:
        return "days_at_the_end" if self.batched else "days_grouped" if self.grouped else "days"

    @property
    def how(self) -> str:
        ending = ", recorded at the end" if self.batched else ""
        return self.settings.label + (", recorded a wake-up at a time" if self.grouped else ending)

    @property
    def label(self) -> str:
        kind = "pooled (the project's)" if self.pooled else "stock (Dagster's)"
        return f"{self.storage}, {kind}, {self.how}"


@dataclass(frozen=True)
class Measured:
    one_day: float
    days: float
    peak_rss_mb: float
    recorded: int  # days recorded as materialized after the range's run
    spacing_ms: float  # between the range's first and last recorded day, over the days between

    def per_day_ms(self, days: int) -> float:
        return (self.days - self.one_day) / (days - 1) * 1000


def cases() -> Iterator[Case]:
    for storage in ("sqlite", "postgres"):
        for settings in (Settings(), Settings(subset=True)):
            for pooled in (False, True):
                yield Case(storage, pooled, settings)
        yield Case(storage, True, Settings(subset=True, batch=1000), grouped=True)
        yield Case(storage, True, Settings(subset=True, batch=1000), batched=True)


def measure(
    live: harness.Processes, homes: Instances, case: Case, days: int, turn: int
) -> Measured:
    """One case's two runs, each on an instance of its own."""
    walls, rss = [], 0.0
    for span in (1, days):
        last = FIRST_DAY + timedelta(days=span - 1)
        name = f"{case.storage}-{'pooled' if case.pooled else 'stock'}-{case.asset}"
        name += f"-{'subset' if case.settings.subset else 'planned'}-{span}-{turn}"
        home = homes.home(name, case.storage, case.pooled)
        env = {**_inherited(), "DAGSTER_HOME": str(home), **case.settings.env()}
        cmd = harness.dagster_materialize(["-f", str(ASSETS)], case.asset, FIRST_DAY, last)
        run = live.measure(cmd, env, name)
        walls.append(run.wall)
        rss = max(rss, run.peak_rss_mb)
    recorded, spacing = _recorded(home, case.asset, days, MAX_BATCH_DAYS if case.grouped else 1)
    return Measured(walls[0], walls[1], rss, recorded, spacing)


def _recorded(home: Path, asset: str, days: int, batch: int) -> tuple[int, float]:
    """(days recorded as materialized, ms a recorded day): the time between the first day's
    event and the first of the last batch's, over the days recorded between. The body yields its
    days back to back and each batch's events are stamped as they are built, just before it is
    stored, so what separates two batches is what storing the first cost, free of the
    start-up's noise. A batch of one: the time between the first and the last day's events."""
    with harness.as_dagster_home(home), dg.DagsterInstance.from_config(str(home)) as instance:
        key = dg.AssetKey(asset)
        records = instance.fetch_materializations(key, limit=days).records
        stamps = [r.timestamp for r in sorted(records, key=lambda r: r.partition_key or "")]
        last_batch = (days - 1) // batch * batch
        spacing = (stamps[last_batch] - stamps[0]) / last_batch * 1000
        return len(instance.get_materialized_partitions(key)), spacing


def _inherited() -> dict[str, str]:
    """This process's environment, less the instance and the settings each case sets itself."""
    return {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", *SETTINGS_NAMES)}


def report(scratch: Path, days: int, repeats: int) -> str:
    logs = scratch / "logs"
    logs.mkdir()
    best: dict[Case, Measured] = {}
    with harness.Processes(logs) as live, instances(scratch) as homes:
        for turn in range(repeats):
            for case in cases():
                harness.progress(f"turn {turn + 1} of {repeats}: {case.label}")
                found = measure(live, homes, case, days, turn)
                kept = best.get(case)
                if kept is None or found.spacing_ms < kept.spacing_ms:
                    best[case] = found
    return markdown(best, days, repeats)


def markdown(best: dict[Case, Measured], days: int, repeats: int) -> str:
    rows = [
        f"| {case.storage} | {'pooled' if case.pooled else 'stock'} | "
        f"{case.how} | {found.one_day:.2f} | {found.days:.2f} | "
        f"{'–' if case.batched else f'{found.spacing_ms:.1f}'} | "
        f"{found.per_day_ms(days):.1f} | {found.peak_rss_mb:.0f} | "
        f"{harness.checked(days, recorded=found.recorded)} |"
        for case, found in best.items()
    ]
    targets = [t for storage in ("sqlite", "postgres") for t in _targets(best, storage, days)]
    return "\n".join(
        [
            "# Bookkeeping: what recording a day costs",
            "",
            "A null asset yielding one materialization per day, as the raw assets do, run "
            f"over 1 day and over {days} days through `dagster asset materialize`, each run on "
            "a fresh instance. *ms a recorded day* is the time between the range run's first "
            f"and last recorded day over the {days - 1} between: the body yields its days back "
            "to back, so it is what storing a day's event costs. *ms a day of wall* is "
            f"(wall of {days} days − wall of 1 day) ÷ {days - 1}: the same, with the planning "
            "of each partition, and the noise of two process start-ups. The best of "
            f"{repeats} turn(s). *Stock* is Dagster's own event log storage; *pooled* is the "
            "project's (nyc_collisions_dagster/instance/), which deploy/dagster.yaml and the "
            "production configs use. *Subset planned events* is "
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS, which `make backfill` sets. "
            "*Recorded a wake-up at a time* is the raw assets' own path: the days their writer "
            "finished since the body last looked are recorded as one batch of at most "
            f"{MAX_BATCH_DAYS} (raw/recording.py), which the instance stores whole when "
            "DAGSTER_EVENT_BATCH_SIZE is set; the null asset's days are all ready at once, so "
            "every batch is full, as when writing outruns recording. Its *ms a recorded day* is "
            "the time between the first day's event and the first of the last batch's, over the "
            "days between: a batch's events are stamped as it is built, just before it is "
            "stored. "
            "*Recorded at the end* is the batched path, for comparison: the asset returns one "
            "output over the range, and Dagster records its days after the body returns, "
            "DAGSTER_EVENT_BATCH_SIZE at a time (one `INSERT` on PostgreSQL, a loop on "
            "SQLite); the UI shows no progress meanwhile, and a killed run records none. Its "
            "events are stamped as they are made, before their batch is stored, so only its "
            "wall measures it.",
            "",
            f"| database | event log storage | settings | 1 day s | {days} days s "
            "| ms a recorded day | ms a day of wall | peak RSS MB | days recorded |",
            "|---|---|---|--:|--:|--:|--:|--:|---|",
            *rows,
            "",
            "| target | value | goal | |",
            "|---|--:|---|---|",
            *(
                f"| {t.figure} | {'n/a' if t.value is None else f'{t.value:.2f}'} | "
                f"{t.op} {t.limit:g} | {t.mark} |"
                for t in targets
            ),
        ]
    )


def _targets(best: dict[Case, Measured], storage: str, days: int) -> list[Target]:
    stock, pooled = (best[Case(storage, pooled, Settings())] for pooled in (False, True))
    [grouped] = [found for case, found in best.items() if case.storage == storage and case.grouped]
    return [
        Target(f"{storage}: ms a recorded day, pooled", pooled.spacing_ms, "≤", TARGET_MS),
        Target(
            f"{storage}: ms a recorded day, pooled, recorded a wake-up at a time",
            grouped.spacing_ms,
            "≤",
            TARGET_MS,
        ),
        Target(
            f"{storage}: ms a recorded day, stock ÷ pooled",
            stock.spacing_ms / pooled.spacing_ms,
            "≥",
            1,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks bookkeeping")
    parser.add_argument("--days", type=int, default=365, help="days of the long run")
    parser.add_argument("--repeats", type=int, default=1, help="turns over the cases")
    args = parser.parse_args()
    if args.days < 2:
        parser.error("--days must be at least 2")
    output = harness.RESULTS / "bookkeeping.md" if args.days == 365 else None
    return harness.run_report(
        lambda scratch: report(scratch, args.days, args.repeats), "bookkeeping-", output
    )


if __name__ == "__main__":
    sys.exit(main())
