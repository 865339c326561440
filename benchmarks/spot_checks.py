"""Spot checks of a landed range: a few day files of each dataset read back from S3 and compared
row for row with the generated source rows of that day, and counted against the server."""

import os
import random
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from benchmarks import harness
from benchmarks.generated import typed_day
from nyc_collisions_dagster.constants import DATASETS, DETAIL_START_MONTH

_DETAIL_START = date.fromisoformat(f"{DETAIL_START_MONTH}-01")


def spot_days(start: date, end: date, seed: str) -> list[date]:
    """The first and last day of [start, end), one drawn at random (seeded, so a rerun checks the
    same), and one before April 2016, when persons and vehicles are sparse, if the range has one."""
    last = end - timedelta(days=1)
    drawn = start + timedelta(days=random.Random(seed).randrange((end - start).days))
    sparse = (
        [start + timedelta(days=(min(end, _DETAIL_START) - start).days // 2)]
        if (start < _DETAIL_START)
        else []
    )
    return sorted({start, last, drawn, *sparse})


def check_day(domain: str, prefix: str, name: str, day: date) -> str | None:
    """None when the day's file holds exactly the source's rows, else what differs."""
    fs = pa_fs.S3FileSystem(
        endpoint_override=os.environ["AWS_ENDPOINT_URL_S3"], region=os.environ["AWS_DEFAULT_REGION"]
    )
    found = pq.read_table(f"{harness.BUCKET}/{prefix}/{name}/{day}.parquet", filesystem=fs)
    expected = typed_day(name, day)
    served = harness.source_rows(domain, day, day + timedelta(days=1), DATASETS[name].dataset_id)
    if found.num_rows != served or expected.num_rows != served:
        return f"{name} {day}: {found.num_rows:,} rows, source {served:,}"
    if not found.equals(expected):
        return f"{name} {day}: {found.num_rows:,} rows, but not the source's"
    return None


@dataclass(frozen=True)
class SpotChecks:
    days: list[date]  # checked in every dataset
    wrong: list[str]  # what differs, a partition each

    @property
    def counts(self) -> str:
        checked = len(self.days) * len(DATASETS)
        return f"{checked - len(self.wrong)}/{checked} exact"

    @property
    def summary(self) -> str:
        text = f"{self.counts} ({', '.join(map(str, self.days))})"
        return text if not self.wrong else f"{text}; differ: {'; '.join(self.wrong)}"


def spot_check(domain: str, prefix: str, start: date, end: date) -> SpotChecks:
    days = spot_days(start, end, seed=f"{start}/{end}")
    return SpotChecks(
        days,
        [
            problem
            for name in DATASETS
            for day in days
            if (problem := check_day(domain, prefix, name, day)) is not None
        ],
    )
