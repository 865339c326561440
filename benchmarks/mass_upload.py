"""Mass-upload benchmark: the guide's two original methods, this project, dlt and two floors.

    python -m benchmarks mass_upload                # 4 years of crashes, both server models
    python -m benchmarks mass_upload --models sleep # the sleep model only
    python -m benchmarks mass_upload --quick        # 3 months, fewer runs: a smoke test
    python -m benchmarks mass_upload --help         # server model and window options

The default run takes about 22 minutes on a quiet 2-core machine; the brute-force baseline and
dlt's rest_api take 2 minutes or more each (dlt's once per model).

Needs the `bench` extra (dlt). For each server model in turn it starts the SODA test server
(synthetic crashes, 0.5 s latency and 50 µs per row served, at most 8 requests at once) and moto
S3, warms the server's row caches, then runs one after another, each in its own process (started
through peak_rss.py, so that its peak RSS is its own). The sleep model waits out the row cost,
leaving the machine to the clients; the cpu model spends it as CPU work on as many cores as
requests in flight, as a database does, so the server competes with the run for the 2 cores.
The first model gets every run below; the others only the runs that issue 11 compares (2, 3's
defaults and as `make backfill` runs them, and 4):

1. the guide's brute force (sequential 5,000-row JSON pages, one DataFrame, one CSV PUT);
2. the guide's multithreaded method (the same pages from a default ThreadPoolExecutor);
3. this project through `dagster asset materialize` with `max_workers=1`, then with defaults,
   then as the README's mass-upload command, `make backfill`, runs it
   (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS: Dagster plans the run with one event instead
   of one per partition; DAGSTER_EVENT_BATCH_SIZE: the days written since the step last looked
   are stored as one batch, raw/recording.py), then with defaults on
   SODA3 (SOCRATA_API=soda3 and an app token: POSTed queries, CSV pages);
4. dlt (dlt_peer.py): its rest_api source as a dlt user configures it for Socrata, then the
   fastest dlt pipeline found (8 date windows of Arrow pages), both into local Parquet;
5. the wire floor: every row once as 50,000-row CSV pages from 8 threads, bytes dropped;
6. the Dagster floor: a do-nothing single-run asset over the same daily range and instance;
7. the project over 1 and 24 months (memory must not grow with the range), and one partition
   of the project against one partition of the Dagster floor.

Every project run gets a fresh DAGSTER_HOME (SQLite, with the event log of deploy/dagster.yaml,
pooled; one run has Dagster's stock event log, for comparison) and its own S3 prefix; the
files it wrote are counted and their rows summed; dlt's files are counted the same way. Progress
goes to stderr; the Markdown report, one section per model, ready for the README, goes to
stdout. Targets are reported, not asserted: the exit status is 0.
"""

import argparse
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import yaml

from benchmarks import harness
from benchmarks.report import (
    Result,
    bookkeeping_targets,
    dlt_notes,
    markdown,
    peer_targets,
    targets,
)
from nyc_collisions_dagster.raw.recording import BATCHED_INSTANCE

START = date(2021, 1, 1)
ORIGINALS = harness.REPO / "benchmarks" / "originals.py"
DLT_PEER = harness.REPO / "benchmarks" / "dlt_peer.py"
FLOOR_MODULE = harness.REPO / "benchmarks" / "dagster_floor.py"
PROJECT_TARGET = ["-m", "nyc_collisions_dagster.definitions"]
SEQUENTIAL = {"resources": {"socrata": {"config": {"max_workers": 1}}}}
MODELS = ("sleep", "cpu")
MODEL_COSTS = {"sleep": "waited", "cpu": "of CPU work"}
# What issue 11's targets compare: every server model measures these.
PEER_RUNS = ("threaded", "project", "subset", "dlt", "dlt_arrow")
SAMPLE_INSTANCE = harness.REPO / "deploy" / "dagster.yaml"
# The README's mass-upload command (make backfill): Dagster plans the run with one event per
# asset, and the days written since the step last looked are stored as one batch.
MASS_UPLOAD = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true", **BATCHED_INSTANCE}


@dataclass(frozen=True)
class Bench:
    """What every run shares: the processes, the server, the child environment, a scratch dir."""

    live: harness.Processes
    domain: str
    env: dict[str, str]
    scratch: Path


def months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


progress = harness.progress


def run_original(bench: Bench, mode: str, start: date, end: date) -> Result:
    key = f"bench/{mode}-{uuid.uuid4().hex[:8]}.csv"
    cmd = harness.window_command(ORIGINALS, mode, bench.domain, start, end, "--key", key)
    measured = bench.live.measure(cmd, bench.env, mode)
    told = json.loads(measured.stdout.splitlines()[-1])
    expected = harness.source_rows(bench.domain, start, end)
    return Result(
        measured.wall,
        told["rows"],
        told["requests"],
        measured.peak_rss_mb,
        harness.checked(expected, csv_rows=harness.csv_object_rows(key)),
    )


def wire_cmd(bench: Bench, start: date, end: date, fmt: str) -> list[str]:
    return harness.window_command(ORIGINALS, "wire", bench.domain, start, end, "--format", fmt)


def warm_up(bench: Bench, end: date) -> None:
    """Every row once as JSON and as CSV, untimed: the server renders a row once per format and
    caches it, so without this pass whichever run came first would pay for the runs after it."""
    progress("... warm-up of the server's caches")
    bench.live.run_together(
        {f"warm-up-{fmt}": wire_cmd(bench, START, end, fmt) for fmt in ("json", "csv")}, bench.env
    )


def run_wire(bench: Bench, start: date, end: date) -> Result:
    measured = bench.live.measure(wire_cmd(bench, start, end, "csv"), bench.env, "wire")
    told = json.loads(measured.stdout.splitlines()[-1])
    expected = harness.source_rows(bench.domain, start, end)
    return Result(
        measured.wall,
        told["rows"],
        told["requests"],
        measured.peak_rss_mb,
        harness.checked(expected, rows=told["rows"]),
    )


def run_dlt(bench: Bench, mode: str, start: date, end: date) -> Result:
    """dlt_peer.py in `mode` into a fresh local folder; its Parquet files' rows are counted
    here, and their collision_ids too, since offset paging repeats and skips rows unseen by a
    count alone."""
    name = f"dlt-{mode}-{uuid.uuid4().hex[:8]}"
    out = bench.scratch / name
    cmd = harness.window_command(DLT_PEER, mode, bench.domain, start, end, "--out", str(out))
    measured = bench.live.measure(cmd, bench.env, name)
    told = json.loads(measured.stdout.splitlines()[-1])
    rows, keys = harness.local_parquet_rows(Path(told["table"]), "collision_id")
    shutil.rmtree(out)
    expected = harness.source_rows(bench.domain, start, end)
    return Result(
        measured.wall,
        rows,
        told["requests"],
        measured.peak_rss_mb,
        harness.checked(expected, rows=rows, distinct_keys=keys, dlt_rows=told["rows"]),
    )


def instance_home(bench: Bench, name: str, stock: bool = False) -> Path:
    """A fresh DAGSTER_HOME with the event log a user's instance has (deploy/dagster.yaml's,
    pooled), or with Dagster's stock one."""
    home = harness.fresh_dagster_home(bench.scratch / name)
    if not stock:
        sample = yaml.safe_load(SAMPLE_INSTANCE.read_text())
        config = home / "dagster.yaml"
        storage = yaml.safe_dump({"event_log_storage": sample["event_log_storage"]})
        config.write_text(config.read_text() + storage)
    return home


def run_project(
    bench: Bench,
    start: date,
    end: date,
    config: dict | None = None,
    soda3: bool = False,
    dagster_env: dict[str, str] | None = None,
    stock: bool = False,
) -> Result:
    """`dagster asset materialize` of crashes over [start, end) into a fresh home and prefix,
    on SODA 2.1 (the default setting, auto) or on SODA3, with Dagster's own settings from
    `dagster_env`, on the sample instance's event log or Dagster's `stock` one."""
    name = f"project-{uuid.uuid4().hex[:8]}"
    home = instance_home(bench, name, stock)
    prefix = f"bench/{name}"
    env = {
        **bench.env,
        "DAGSTER_HOME": str(home),
        "SOCRATA_DOMAIN": bench.domain,
        "COLLISIONS_STORAGE_URL": f"s3://{harness.BUCKET}/{prefix}",
        **(dagster_env or {}),
    }
    if soda3:
        env |= {"SOCRATA_API": "soda3", "SOCRATA_APP_TOKEN": "benchmark-app-token"}
    cmd = harness.dagster_materialize(
        PROJECT_TARGET, "crashes", start, end - timedelta(days=1), config
    )
    measured = bench.live.measure(cmd, env, name)
    partitions, metadata = harness.run_record(home, "crashes")
    objects, rows = harness.parquet_objects(f"{prefix}/crashes")
    days, expected = (end - start).days, harness.source_rows(bench.domain, start, end)
    check = harness.checked(days, partitions=partitions, objects=objects)
    if check == "ok":
        check = harness.checked(expected, rows=rows)
    return Result(measured.wall, rows, metadata.get("requests"), measured.peak_rss_mb, check)


def run_floor(bench: Bench, start: date, end: date) -> Result:
    name = f"floor-{uuid.uuid4().hex[:8]}"
    home = instance_home(bench, name)
    cmd = harness.dagster_materialize(
        ["-f", str(FLOOR_MODULE)], "floor_crashes", start, end - timedelta(days=1)
    )
    measured = bench.live.measure(cmd, {**bench.env, "DAGSTER_HOME": str(home)}, name)
    partitions, _ = harness.run_record(home, "floor_crashes")
    return Result(
        measured.wall,
        0,
        0,
        measured.peak_rss_mb,
        harness.checked((end - start).days, partitions=partitions),
    )


def plan(bench: Bench, end: date, quick: bool) -> dict[str, tuple[str, Callable[[], Result]]]:
    """The runs, in order, keyed for the targets. --quick keeps what exercises every kind of
    run once: no sequential runs and no 1-month run (its RSS ratio is then n/a)."""
    last = end - timedelta(days=1)
    long_end = min(end, harness.add_months(START, 24))
    runs = {
        "brute": ("original brute force", partial(run_original, bench, "brute", START, end)),
        "threaded": (
            "original multithreaded",
            partial(run_original, bench, "threaded", START, end),
        ),
        "sequential": (
            "project, max_workers=1",
            partial(run_project, bench, START, end, SEQUENTIAL),
        ),
        "project": ("project, defaults", partial(run_project, bench, START, end)),
        "stock": (
            "project, defaults, Dagster's stock event log",
            partial(run_project, bench, START, end, stock=True),
        ),
        "subset": (
            "project, as make backfill (subset planned events, days recorded in batches)",
            partial(run_project, bench, START, end, dagster_env=MASS_UPLOAD),
        ),
        "soda3": ("project, defaults, SODA3", partial(run_project, bench, START, end, soda3=True)),
        "dlt": ("dlt rest_api, offset paging", partial(run_dlt, bench, "rest_api", START, end)),
        "dlt_arrow": (
            "dlt, Arrow pages in 8 windows",
            partial(run_dlt, bench, "arrow", START, end),
        ),
        "wire": ("wire floor", partial(run_wire, bench, START, end)),
        "floor": ("Dagster floor", partial(run_floor, bench, START, end)),
        "month": (
            "project, 1 month",
            partial(run_project, bench, START, harness.add_months(START, 1)),
        ),
        "long": (
            f"project, {months_between(START, long_end)} months",
            partial(run_project, bench, START, long_end),
        ),
        "one": ("project, 1 partition", partial(run_project, bench, last, end)),
        "floor_one": ("Dagster floor, 1 partition", partial(run_floor, bench, last, end)),
    }
    if quick:
        del runs["brute"], runs["sequential"], runs["month"], runs["stock"]
    if long_end == end:  # the whole window is the long range: the default run already measured it
        del runs["long"]
    return runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=4, help="window from 2021-01-01 (default 4)")
    parser.add_argument(
        "--quick", action="store_true", help="3 months, no sequential or 1-month runs: a smoke test"
    )
    parser.add_argument(
        "--only",
        help="comma-separated runs to measure, e.g. project,month,long "
        "(keys: brute, threaded, sequential, project, stock, subset, soda3, dlt, "
        "dlt_arrow, wire, floor, month, long, one, floor_one)",
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="server models, measured one after the other: sleep (the row cost "
        "is waited) and cpu (it is CPU work). The first gets every run, the "
        f"others only {', '.join(PEER_RUNS)} (default {','.join(MODELS)})",
    )
    parser.add_argument("--latency", type=float, default=0.5, help="server seconds per request")
    parser.add_argument(
        "--row-cost", type=float, default=0.00005, help="server seconds per row served"
    )
    parser.add_argument(
        "--max-concurrent", type=int, default=8, help="requests the server serves at once"
    )
    return parser.parse_args()


def benchmark(args: argparse.Namespace, scratch: Path) -> str:
    end = harness.add_months(START, 3 if args.quick else 12 * args.years)
    models = args.models.split(",")
    return "\n\n".join(
        measure(args, scratch, end, model, first=model == models[0]) for model in models
    )


def measure(args: argparse.Namespace, scratch: Path, end: date, model: str, first: bool) -> str:
    """One server model's runs and their report; a model after the first gets PEER_RUNS only."""
    days = (end - START).days
    with harness.Processes(scratch) as live:
        progress(f"[{model} model] starting the SODA server ({days} days of crashes) and moto S3")
        domain, aws_env = harness.start_services(
            live, START, end, args.latency, args.row_cost, args.max_concurrent, model
        )
        total = harness.source_rows(domain, START, end)
        env = {**os.environ, **aws_env}
        for name in (
            "DAGSTER_HOME",
            "SOCRATA_DOMAIN",
            "SOCRATA_APP_TOKEN",
            "SOCRATA_API",
            "COLLISIONS_STORAGE_URL",
        ):
            env.pop(name, None)  # nothing from the caller's shell steers a run
        bench = Bench(live, domain, env, scratch)
        warm_up(bench, end)
        runs = plan(bench, end, args.quick)
        if not first:
            runs = {key: run for key, run in runs.items() if key in PEER_RUNS}
        if args.only:
            runs = {key: runs[key] for key in args.only.split(",") if key in runs}
        results = {key: harness.attempt(label, run) for key, (label, run) in runs.items()}
    if "long" not in runs and "project" in results:
        results["long"] = results["project"]
    context = [
        f"Crashes {START} to {end - timedelta(days=1)}: {days:,} daily partitions, "
        f"{total:,} rows. Test server ({model} model): {args.latency:g} s per request, "
        f"{args.row_cost * 1e6:g} µs {MODEL_COSTS[model]} per row, at most "
        f"{args.max_concurrent} requests at once. Machine: {os.cpu_count()} cores. "
        f"`python -m benchmarks mass_upload{' --quick' if args.quick else f' --years {args.years}'}"
        f" --models {args.models}`.",
    ]
    labels = {key: label for key, (label, _) in runs.items()}
    goals = targets(results, min(24, months_between(START, end))) if first else []
    goals += peer_targets(results, with_threaded=not first)
    goals += bookkeeping_targets(results) if first else []
    notes = floor_notes(results, days) + soda3_notes(results) + dlt_notes(results, labels)
    return markdown(
        f"Mass upload benchmark, {model} server model", context, labels, results, goals, notes
    )


def soda3_notes(results: dict[str, Result | None]) -> list[str]:
    """SODA3 beside SODA 2.1: the same run, the same server and data, the other transport."""
    soda2, soda3 = results.get("project"), results.get("soda3")
    if soda2 is None or soda3 is None:
        return []
    return [
        f"SODA3: {soda3.wall:.1f} s against SODA 2.1's {soda2.wall:.1f} s "
        f"({soda3.wall / soda2.wall:.2f}x), {soda3.requests} requests against "
        f"{soda2.requests}, peak RSS {soda3.rss_mb:.0f} MB against {soda2.rss_mb:.0f} MB."
    ]


def floor_notes(results: dict[str, Result | None], days: int) -> list[str]:
    """Dagster's cost per partition, from the floor over the range and over one day."""
    floor, one = results.get("floor"), results.get("floor_one")
    if floor is None or one is None or days < 2:
        return []
    per_day = (floor.wall - one.wall) / (days - 1)
    return [
        f"Dagster floor: {one.wall:.1f} s for one partition, then "
        f"{per_day * 1000:.1f} ms per further partition (SQLite, the sample instance's pooled "
        "event log). "
        "Wall times include each command's start-up; peak RSS is each run's largest "
        "process; requests are counted by the client, or read from the run's metadata."
    ]


def main() -> int:
    args = parse_args()
    output = None if args.quick else harness.RESULTS / "mass_upload.md"
    return harness.run_report(lambda scratch: benchmark(args, scratch), "mass-upload-", output)
