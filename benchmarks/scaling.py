"""Scaling benchmark: the history of the three datasets in one backfill run, the points on the
way there, and Dagster's share of the time on SQLite and on PostgreSQL.

    python -m benchmarks scale          # 1 month, 1 year, 4 years: ~10 min on 2 idle cores
    python -m benchmarks scale --full   # and the full history from 2012-07-01: ~25 min more
    python -m benchmarks scale --share  # and Dagster's share over 1 year: ~10 min more
    python -m benchmarks scale --quick  # 1 and 3 months: a smoke test (with --share too)

It starts the suite's SODA server with crashes, persons and vehicles generated at realistic daily
volumes from the first day the points need (persons and vehicles sparse before April 2016, as
upstream), served from a spool on disk so that 16 million rows fit in little memory
(nyc_collisions_dagster_tests/spooled_table.py), with mass_upload.py's model of the real service
(0.5 s a request, 50 µs a row, 8 requests at once), and moto S3 as the lake. Every point is a
range ending on the newest partition. For each point, each run in its own process through
peak_rss.py, one after another:

1. the project: `dagster asset materialize --select crashes,persons,vehicles --partition-range
   A...B` (one run) in a fresh DAGSTER_HOME, the default SQLite instance; then spot checks: the
   first, the last, a random day and one before April 2016 of each dataset read back from S3 and
   compared row for row with the source;
2. the Dagster floor: the same command over three do-nothing assets (dagster_floor.py);
3. the wire floor: every row of the three datasets once, 50,000-row pages from 8 threads.

With --share, then Dagster's share over the 1-year range (3 months with --quick): the floor over
one day and over the range on SQLite and on PostgreSQL (Debian's, started here), with Dagster's
settings for writing events (instances.Settings) off and on, and the project with those each
storage can use. Every Dagster run's phases (planning, each step's fetching and recording) are
read back from its event log.

Progress goes to stderr; the Markdown report, ready for the README, to stdout. Targets are
reported, not asserted: the exit status is 0 unless the services failed.
"""

import argparse
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import boto3

from benchmarks import harness, instances, scaling_report, timeline
from benchmarks.generated import CRASHES_PER_DAY
from benchmarks.report import Result
from benchmarks.scaling_report import Timed
from benchmarks.spot_checks import spot_check
from nyc_collisions_dagster.constants import DATASETS, START_DATE
from nyc_collisions_dagster.partitions import daily_partitions

FLOOR_MODULE = harness.REPO / "benchmarks" / "dagster_floor.py"
ORIGINALS = harness.REPO / "benchmarks" / "originals.py"
PROJECT = ["-m", "nyc_collisions_dagster.definitions"]
PROJECT_ASSETS = ",".join(DATASETS)
FLOOR_ASSETS = ",".join(f"floor_{name}" for name in DATASETS)
FIRST_DAY = date.fromisoformat(START_DATE)
_CALLER_SETTINGS = (
    "DAGSTER_HOME",
    "SOCRATA_DOMAIN",
    "SOCRATA_APP_TOKEN",
    "SOCRATA_API",
    "COLLISIONS_STORAGE_URL",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_SESSION_TOKEN",
    *instances.SETTINGS_NAMES,
)


@dataclass(frozen=True)
class Point:
    """A range of whole days [start, end) ending on the newest partition."""

    label: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def partitions(self) -> int:
        return self.days * len(DATASETS)


def points(end: date, quick: bool, full: bool) -> list[Point]:
    months = {"1 month": 1, "3 months": 3} if quick else {"1 month": 1, "1 year": 12, "4 years": 48}
    found = [Point(label, harness.add_months(end, -n), end) for label, n in months.items()]
    return found + ([Point("full history", FIRST_DAY, end)] if full else [])


@dataclass(frozen=True)
class Bench:
    live: harness.Processes
    homes: instances.Instances
    domain: str
    env: dict[str, str]  # AWS pointing at moto, nothing from the caller's shell
    scratch: Path


def run_project(
    bench: Bench,
    point: Point,
    storage: str = "sqlite",
    settings: instances.Settings = instances.DEFAULTS,
) -> Timed:
    """The project over the point into a fresh instance and S3 prefix: every partition recorded,
    a file for each, the run's rows equal to the source's; then spot checks, then the prefix is
    emptied so that moto's memory does not grow from point to point."""
    name = f"project-{uuid.uuid4().hex[:8]}"
    home = bench.homes.home(name, storage)
    prefix = f"bench/{name}"
    env = {
        **bench.env,
        **settings.env(),
        "DAGSTER_HOME": str(home),
        "SOCRATA_DOMAIN": bench.domain,
        "COLLISIONS_STORAGE_URL": f"s3://{harness.BUCKET}/{prefix}",
    }
    cmd = harness.dagster_materialize(
        PROJECT, PROJECT_ASSETS, point.start, point.end - timedelta(days=1)
    )
    measured = bench.live.measure(cmd, env, name)
    rows, requests, problems = 0, 0, []
    for asset, dataset in DATASETS.items():
        partitions, summary = harness.run_record(home, asset, newest(point))
        objects = object_count(f"{prefix}/{asset}")
        source = harness.source_rows(bench.domain, point.start, point.end, dataset.dataset_id)
        found = summary.get("run_rows")
        rows += found or 0
        requests += summary.get("requests") or 0
        problem = harness.checked(point.days, partitions=partitions, objects=objects)
        problem = harness.checked(source, rows=found) if problem == "ok" else problem
        problems += [] if problem == "ok" else [f"{asset}: {problem}"]
    spots = spot_check(bench.domain, prefix, point.start, point.end)
    empty_prefix(prefix)
    return Timed(
        measured.wall,
        rows,
        requests,
        measured.peak_rss_mb,
        "; ".join(problems) or "ok",
        spots,
        timeline.phases(home),
    )


def newest(point: Point) -> str:
    return (point.end - timedelta(days=1)).isoformat()


def run_floor(
    bench: Bench,
    point: Point,
    storage: str = "sqlite",
    settings: instances.Settings = instances.DEFAULTS,
) -> Timed:
    name = f"floor-{storage}-{uuid.uuid4().hex[:8]}"
    home = bench.homes.home(name, storage)
    cmd = harness.dagster_materialize(
        ["-f", str(FLOOR_MODULE)], FLOOR_ASSETS, point.start, point.end - timedelta(days=1)
    )
    env = {**bench.env, **settings.env(), "DAGSTER_HOME": str(home)}
    measured = bench.live.measure(cmd, env, name)
    recorded = {
        f"floor_{asset}": harness.run_record(home, f"floor_{asset}")[0] for asset in DATASETS
    }
    return Timed(
        measured.wall,
        0,
        0,
        measured.peak_rss_mb,
        harness.checked(point.days, **recorded),
        phases=timeline.phases(home),
    )


def run_wire(bench: Bench, point: Point) -> Result:
    ids = ",".join(d.dataset_id for d in DATASETS.values())
    cmd = harness.window_command(
        ORIGINALS, "wire", bench.domain, point.start, point.end, "--datasets", ids
    )
    measured = bench.live.measure(cmd, bench.env, f"wire-{uuid.uuid4().hex[:8]}")
    told = scaling_report.last_json(measured.stdout)
    expected = sum(
        harness.source_rows(bench.domain, point.start, point.end, d.dataset_id)
        for d in DATASETS.values()
    )
    return Result(
        measured.wall,
        told["rows"],
        told["requests"],
        measured.peak_rss_mb,
        harness.checked(expected, rows=told["rows"]),
    )


def object_count(prefix: str) -> int:
    pages = boto3.client("s3").get_paginator("list_objects_v2")
    return sum(
        page.get("KeyCount", 0)
        for page in pages.paginate(Bucket=harness.BUCKET, Prefix=f"{prefix}/")
    )


def empty_prefix(prefix: str) -> None:
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=harness.BUCKET, Prefix=f"{prefix}/"
    ):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=harness.BUCKET, Delete={"Objects": keys})


Plan = dict[str, tuple[str, Callable[[], Result]]]


def curve_plan(bench: Bench, curve: list[Point]) -> Plan:
    runs: Plan = {}
    for p in curve:
        runs[f"project {p.label}"] = (f"project, {p.label}", partial(run_project, bench, p))
        runs[f"floor {p.label}"] = (f"Dagster floor, {p.label}", partial(run_floor, bench, p))
        runs[f"wire {p.label}"] = (f"wire floor, {p.label}", partial(run_wire, bench, p))
    return runs


def share_plan(bench: Bench, point: Point) -> Plan:
    """Dagster's share over one point: the floor over one day and over the point with each
    variant of the settings, and the project with some, on both storages. SQLite with defaults
    over the point is the curve's."""
    one_day = Point("1 day", point.end - timedelta(days=1), point.end)
    runs: Plan = {}
    for storage in scaling_report.STORAGES:
        runs[f"floor1 {storage}"] = (
            f"Dagster floor, 1 day, {storage}",
            partial(run_floor, bench, one_day, storage),
        )
        for kind, run, variants in (
            ("floor", run_floor, scaling_report.FLOOR_VARIANTS),
            ("project", run_project, scaling_report.PROJECT_VARIANTS[storage]),
        ):
            for settings in variants:
                key = scaling_report.share_key(kind, storage, settings, point)
                runs[key] = (
                    f"{kind}, {point.label}, {storage}, {settings.label}",
                    partial(run, bench, point, storage, settings),
                )
    return runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="also the full history from 2012-07-01 (many minutes)"
    )
    parser.add_argument("--quick", action="store_true", help="1 and 3 months: a smoke test")
    parser.add_argument(
        "--share",
        action="store_true",
        help="also Dagster's share over 1 year on SQLite and PostgreSQL, with its "
        "settings for writing events off and on (about 10 min more)",
    )
    return parser.parse_args()


def benchmark(args: argparse.Namespace, scratch: Path) -> str:
    end = date.fromisoformat(daily_partitions.get_last_partition_key()) + timedelta(days=1)
    curve = points(end, args.quick, args.full)
    share_point = curve[1]  # 1 year, or 3 months with --quick
    first = curve[-1].start
    started = time.perf_counter()
    spool = scratch / "spool"
    spool.mkdir()
    with harness.Processes(scratch) as live, instances.instances(scratch) as homes:
        harness.progress(
            f"generating {first}...{end - timedelta(days=1)} of the three datasets "
            "into the SODA server's spool, and starting moto S3"
        )
        domain, aws_env = harness.start_services(
            live,
            first,
            end,
            latency=0.5,
            row_cost=0.00005,
            max_concurrent=8,
            datasets=list(DATASETS),
            server_options=[
                "--spool",
                str(spool),
                "--crashes-per-day",
                ",".join(map(str, CRASHES_PER_DAY)),
            ],
        )
        harness.progress(f"    {time.perf_counter() - started:.0f} s")
        env = {k: v for k, v in os.environ.items() if k not in _CALLER_SETTINGS} | aws_env
        bench = Bench(live, homes, domain, env, scratch)
        runs = curve_plan(bench, curve)
        if args.share:  # its runs on SQLite with defaults are the curve's
            runs |= {k: v for k, v in share_plan(bench, share_point).items() if k not in runs}
        results = {key: harness.attempt(label, run) for key, (label, run) in runs.items()}
        volumes = scaling_report.volumes(domain, curve)
    return scaling_report.markdown(
        args, curve, share_point, results, volumes, time.perf_counter() - started
    )


def main() -> int:
    args = parse_args()
    output = None if args.quick else harness.RESULTS / "scale.md"
    return harness.run_report(lambda scratch: benchmark(args, scratch), "scaling-", output)
