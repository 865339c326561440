"""Lake benchmark: what the processed layer costs to build and what it saves readers, on moto S3.

    python -m benchmarks lake             # 4 years (2020-2023): ~8 min on 2 idle cores
    python -m benchmarks lake --quick     # 3 months: a smoke test in about 30 s
    python -m benchmarks lake --diagnose  # also where each query's CPU goes
    python -m benchmarks lake --help      # window and repetition options

It starts moto S3 in server mode, lands the generated days of crashes, persons and vehicles as the
raw layer does (typed Parquet, one file per dataset and day, month by month so memory stays
small), then measures, each in its own process started through peak_rss.py:

1. a plain read of every raw day file with pyarrow from 16 threads, as many as the build reads with;
2. the processed build over the whole window with `dagster asset materialize`, as users run it;
3. the processed build over 1 month and over 24 months, for peak RSS.

Then three DuckDB questions (and the second once more with the join on both layers), each over
the raw and over the processed layer through
`nyc_collisions_dagster.lake.connect`, in this process: one warm-up (whose answers are compared),
then the best of a few timed runs, then one run with moto's request recorder on, which counts the
S3 requests. A timed run opens the connection (listing the views the query names) and fetches
the answer, as
`python -m nyc_collisions_dagster.lake` does.

`--diagnose` adds where each query's time goes: CPU of this process and of moto.

Progress goes to stderr; the Markdown report, ready for the README, to stdout. Targets are
reported, not asserted: the exit status is 0 unless a run failed.
"""

import argparse
import calendar
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import requests

from benchmarks import dashboard_build, harness, raw_read, summary_tier
from benchmarks.generated import CRASHES_PER_DAY, generate, typed
from benchmarks.report import Target
from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.lake import query as lake
from nyc_collisions_dagster.lake.storage import PartitionStore
from nyc_collisions_dagster_tests.soda_fake.processes import (
    MOTO_CREDENTIALS,
    free_port,
    moto_command,
    wait_for_moto,
)

START = date(2020, 1, 1)  # persons and vehicles are complete from 2016-04 on
RSS_LONG_MONTHS = 24
# The last revision whose processed tables lack crash_borough, injury_severity and the vehicle
# classes: what those columns cost is this checkout's build against its build.
BASELINE = "2468a41"
RAW_READ = Path(raw_read.__file__)
DEFINITIONS = ["-m", "nyc_collisions_dagster.definitions"]
PROCESSED_SELECT = ",".join(f"processed/{name}" for name in DATASETS)
LANDING_WRITERS = 8
# Settings of the caller's shell that would steer a child run elsewhere.
_CALLER_SETTINGS = (
    "DAGSTER_HOME",
    "COLLISIONS_STORAGE_URL",
    "COLLISIONS_PROCESSED_URL",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_SESSION_TOKEN",
)


progress = harness.progress


# --- the window -------------------------------------------------------------------------------


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_days(first: date) -> list[date]:
    last = calendar.monthrange(first.year, first.month)[1]
    return [first.replace(day=d) for d in range(1, last + 1)]


@dataclass(frozen=True)
class Window:
    """Whole months from `start`: the raw days landed and the processed partitions built."""

    start: date
    months: int

    @property
    def end(self) -> date:
        return harness.add_months(self.start, self.months)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def firsts(self) -> list[date]:
        return [harness.add_months(self.start, n) for n in range(self.months)]

    def prefix(self, months: int) -> "Window":
        return Window(self.start, months)


# --- moto and its request recorder --------------------------------------------------------------


@dataclass(frozen=True)
class S3Requests:
    """What S3 was asked. `gets` counts every GET, listings included, as S3 bills them."""

    gets: int
    lists: int
    heads: int
    objects: int  # distinct objects read by a GetObject
    unparsed: int  # recorder lines that could not be read (concurrent appends)


class Moto:
    """moto S3 in server mode, in its own process group, with its request recorder in a file."""

    def __init__(self, live: harness.Processes, scratch: Path) -> None:
        self.recording = scratch / "moto_recording.jsonl"
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(self.recording)}
        process = live.start(moto_command(port), env, "moto")
        self.pid = process.pid
        wait_for_moto(self.endpoint, process)

    def cpu_seconds(self) -> float:
        """moto's user and system CPU time so far (Linux /proc): what serving requests costs."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def aws_env(self) -> dict[str, str]:
        return {**MOTO_CREDENTIALS, "AWS_ENDPOINT_URL_S3": self.endpoint}

    def _recorder(self, action: str) -> None:
        requests.post(f"{self.endpoint}/moto-api/recorder/{action}", timeout=30).raise_for_status()

    @contextmanager
    def counting(self) -> Iterator[list[S3Requests]]:
        """Record the requests made inside the block; the list holds their count afterwards.

        Recording appends a line per request to a file in moto, so it is on only for this block,
        never while a run is timed.
        """
        self._recorder("reset-recording")
        self._recorder("start-recording")
        counted: list[S3Requests] = []
        try:
            yield counted
        finally:
            self._recorder("stop-recording")
        counted.append(count_requests(self.recording.read_text().splitlines()))


def count_requests(lines: Sequence[str]) -> S3Requests:
    methods: Counter[str] = Counter()
    objects: set[str] = set()
    unparsed = 0
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            unparsed += 1
            continue
        url = urlsplit(entry["url"])
        method = entry["method"]
        # Path-style addressing (/bucket/key): a GET of the bucket alone is a listing.
        has_key = "/" in url.path.strip("/")
        if method == "GET" and (not has_key or "list-type" in parse_qs(url.query)):
            methods["LIST"] += 1
        elif method == "GET":
            objects.add(url.path)
        methods[method] += 1
    return S3Requests(methods["GET"], methods["LIST"], methods["HEAD"], len(objects), unparsed)


# --- landing the raw layer ----------------------------------------------------------------------


def day_tables(table: pa.Table, days: list[date]) -> Iterator[tuple[str, pa.Table]]:
    """Every day of the month, a quiet one included (the raw layer writes it with zero rows)."""
    for day in days:
        yield day.isoformat(), table.filter(pc.equal(table["crash_date"], pa.scalar(day)))


def land_raw(url: str, window: Window) -> dict[str, dict[str, int]]:
    """Generate and upload the window month by month; rows landed by month and dataset.

    A month is generated while the previous one uploads, so at most two are in memory.
    """
    stores = {name: PartitionStore(url, name) for name in DATASETS}
    landed: dict[str, dict[str, int]] = {}
    with ThreadPoolExecutor(LANDING_WRITERS) as pool:
        uploading: list[Future[None]] = []
        for first in window.firsts():
            generated = generate(
                first, harness.add_months(first, 1), crashes_per_day=CRASHES_PER_DAY
            )
            tables = {name: typed(name, generated.pop(name)) for name in DATASETS}
            for future in uploading:
                future.result()
            uploading = [
                pool.submit(stores[name].write, day, table)
                for name, month in tables.items()
                for day, table in day_tables(month, month_days(first))
            ]
            landed[month_key(first)] = {name: t.num_rows for name, t in tables.items()}
        for future in uploading:
            future.result()
    return landed


def rows_in(landed: dict[str, dict[str, int]], window: Window) -> dict[str, int]:
    months = {month_key(first) for first in window.firsts()}
    return {name: sum(landed[m][name] for m in months) for name in DATASETS}


# --- measured children --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    label: str
    months: int
    wall: float
    rss_mb: float
    check: str


@dataclass(frozen=True)
class Bench:
    live: harness.Processes
    env: dict[str, str]  # the child environment: AWS pointing at moto, nothing from the caller
    scratch: Path
    root: str  # s3://bucket/prefix of this benchmark
    raw_url: str
    landed: dict[str, dict[str, int]]


def checked(expected: dict[str, int], found: dict[str, int]) -> str:
    wrong = [
        f"{name} {found[name]:,} (expected {n:,})"
        for name, n in expected.items()
        if found.get(name) != n
    ]
    return "ok" if not wrong else "rows differ: " + ", ".join(wrong)


def run_raw_read(bench: Bench, window: Window) -> Run:
    last = window.end - timedelta(days=1)
    cmd = [sys.executable, str(RAW_READ), bench.raw_url, str(window.start), str(last)]
    measured = bench.live.measure(cmd, bench.env, "raw-read")
    told = json.loads(measured.stdout.splitlines()[-1])
    check = checked(rows_in(bench.landed, window), told["rows"])
    label = (
        f"plain read of the raw day files ({told['files']:,} files, pyarrow, "
        f"{raw_read.BUILD_READERS} threads)"
    )
    return Run(label, window.months, measured.wall, measured.peak_rss_mb, check)


def materialize_cmd(window: Window) -> list[str]:
    first, last = month_key(window.start), month_key(harness.add_months(window.end, -1))
    partitions = (
        ["--partition", first] if first == last else ["--partition-range", f"{first}...{last}"]
    )
    return [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        *DEFINITIONS,
        "--select",
        PROCESSED_SELECT,
        *partitions,
    ]


def run_build(
    bench: Bench, window: Window, checkout: Path = harness.REPO, label: str = "processed build"
) -> tuple[Run, str]:
    """The processed build of the window into a fresh DAGSTER_HOME and prefix, with the package
    of `checkout`; (run, its URL)."""
    name = f"build-{window.months}m-{uuid.uuid4().hex[:6]}"
    home = harness.fresh_dagster_home(bench.scratch / name)
    url = f"{bench.root}/{name}/collisions_processed_data"
    env = {
        **bench.env,
        "DAGSTER_HOME": str(home),
        "COLLISIONS_STORAGE_URL": bench.raw_url,
        "COLLISIONS_PROCESSED_URL": url,
    }
    measured = bench.live.measure(materialize_cmd(window), env, name, cwd=checkout)
    months = f"{window.months} month{'s' if window.months > 1 else ''}"
    return Run(
        f"{label}, `dagster asset materialize` ({months})",
        window.months,
        measured.wall,
        measured.peak_rss_mb,
        check_build(bench, window, url),
    ), url


@contextmanager
def baseline_checkout(revision: str, scratch: Path) -> Iterator[Path]:
    """A detached worktree of `revision`, removed afterwards."""
    path = scratch / "baseline"
    git = ["git", "-C", str(harness.REPO)]
    subprocess.run(
        [*git, "worktree", "add", "--detach", str(path), revision], check=True, capture_output=True
    )
    try:
        yield path
    finally:
        subprocess.run(
            [*git, "worktree", "remove", "--force", str(path)], check=True, capture_output=True
        )


def check_build(bench: Bench, window: Window, url: str) -> str:
    """One file per month and dataset, holding exactly the raw rows of those months."""
    prefix = url.removeprefix(f"s3://{harness.BUCKET}/")
    found = {name: harness.parquet_objects(f"{prefix}/{name}") for name in DATASETS}
    files = [
        f"{name} {objects}" for name, (objects, _) in found.items() if objects != window.months
    ]
    if files:
        return f"expected {window.months} files each, found " + ", ".join(files)
    return checked(rows_in(bench.landed, window), {n: rows for n, (_, rows) in found.items()})


# --- queries ------------------------------------------------------------------------------------

# Bands end at 120: the processed layer nulls ages outside 0-120, so both layers put those rows
# in 'unknown' and the answers can be compared.
_AGE_BAND = """CASE WHEN p.person_age BETWEEN 0 AND 17 THEN '0-17'
    WHEN p.person_age BETWEEN 18 AND 34 THEN '18-34'
    WHEN p.person_age BETWEEN 35 AND 64 THEN '35-64'
    WHEN p.person_age BETWEEN 65 AND 120 THEN '65-120' ELSE 'unknown' END"""
_PERSONS_BY_AGE = f"""SELECT c.borough, {_AGE_BAND} AS age_band, p.person_injury,
    count(*) AS persons
FROM persons p LEFT JOIN crashes c ON c.collision_id = p.collision_id
GROUP BY ALL ORDER BY ALL"""
# Processed persons carry their crash's borough: the same question without the join.
_PERSONS_BY_AGE_PROCESSED = f"""SELECT p.borough, {_AGE_BAND} AS age_band, p.person_injury,
    count(*) AS persons
FROM persons p GROUP BY ALL ORDER BY ALL"""
_ZIP = "11207"
_ZIP_COLUMNS = """collision_id, crash_date, crash_time, on_street_name, off_street_name,
    number_of_persons_injured, number_of_persons_killed"""


@dataclass(frozen=True)
class Query:
    key: str
    title: str
    raw: str
    processed: str
    speedup_target: float


def queries(month: date) -> list[Query]:
    following = harness.add_months(month, 1)
    return [
        Query(
            "a",
            "injuries by borough and year",
            """SELECT borough, year(crash_date) AS year, count(*) AS crashes,
                    sum(number_of_persons_injured) AS injured,
                    sum(number_of_persons_killed) AS killed
                 FROM crashes GROUP BY ALL ORDER BY ALL""",
            # `year` is the Hive folder's: known from the path, read from no file.
            """SELECT borough, year, count(*) AS crashes,
                    sum(number_of_persons_injured) AS injured,
                    sum(number_of_persons_killed) AS killed
                 FROM crashes GROUP BY ALL ORDER BY ALL""",
            20,
        ),
        Query(
            "b",
            "persons by age band and injury, with the crash's borough",
            _PERSONS_BY_AGE,
            _PERSONS_BY_AGE_PROCESSED,
            20,
        ),
        # The same question as a user who ignores the carried borough asks it, on both layers.
        Query(
            "b-join",
            "the same, joined to crashes on both layers",
            _PERSONS_BY_AGE,
            _PERSONS_BY_AGE,
            20,
        ),
        Query(
            "c",
            f"crashes of {month_key(month)} in ZIP {_ZIP}",
            f"""SELECT {_ZIP_COLUMNS} FROM crashes
                  WHERE crash_date >= DATE '{month}' AND crash_date < DATE '{following}'
                    AND zip_code = '{_ZIP}' ORDER BY collision_id""",
            # Filters on the Hive columns, which prune the other months' files unopened.
            f"""SELECT {_ZIP_COLUMNS} FROM crashes
                  WHERE year = {month.year} AND month = {month.month}
                    AND zip_code = '{_ZIP}' ORDER BY collision_id""",
            10,
        ),
    ]


def ask(layer: str, url: str, sql: str) -> list[tuple]:
    """A question as a user asks it: connect (which lists the layer), run, fetch every row."""
    connection = lake.connect(layer, url, lake.views_in(sql, layer))
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@dataclass(frozen=True)
class Timing:
    seconds: float  # the best wall time
    cpu: float  # this process's CPU seconds (DuckDB, pyarrow, the S3 client) in that run
    moto_cpu: float  # moto's CPU seconds in that run: what serving the requests cost
    requests: S3Requests
    rows: int


@dataclass(frozen=True)
class Answer:
    query: Query
    raw: Timing
    processed: Timing
    same: bool


def measure_query(moto: Moto, query: Query, urls: dict[str, str], repeats: int) -> Answer:
    """Warm-up (answers kept), then raw and processed timed in turns, then one counted run each.

    Turns, rather than one layer's runs then the other's, expose both to the same load on a
    shared machine.
    """
    sql = {"raw": query.raw, "processed": query.processed}
    answers = {layer: ask(layer, urls[layer], sql[layer]) for layer in sql}
    best: dict[str, tuple[float, float, float]] = {}
    for _ in range(repeats):
        for layer in sql:
            moto_started, cpu_started = moto.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            ask(layer, urls[layer], sql[layer])
            run = (
                time.perf_counter() - started,
                time.process_time() - cpu_started,
                moto.cpu_seconds() - moto_started,
            )
            best[layer] = min(best.get(layer, run), run)
    counts: dict[str, S3Requests] = {}
    for layer in sql:
        with moto.counting() as counted:
            ask(layer, urls[layer], sql[layer])
        counts[layer] = counted[0]
    timings = {layer: Timing(*best[layer], counts[layer], len(answers[layer])) for layer in sql}
    same = answers["raw"] == answers["processed"] and bool(answers["raw"])
    return Answer(query, timings["raw"], timings["processed"], same)


# --- the summary tier ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryPart:
    build: Run | None
    rebuild: Run | None
    rebuild_objects: int | None  # objects the rebuild read after one month changed
    asked: list[summary_tier.Asked]  # summary, processed crashes, then the whole history's two
    sizes: dict[str, int]
    history: pa.Table  # the summary at the whole history's size
    history_months: int

    @property
    def history_rows(self) -> int:
        return self.history.num_rows


def ask_counted(
    moto: Moto, label: str, repeats: int, run: Callable[[], list[tuple]]
) -> summary_tier.Asked:
    """The best of `repeats` timed runs after a warm-up, then one run with S3 requests counted."""
    seconds, answer = summary_tier.best_of(repeats, run)
    with moto.counting() as counted:
        run()
    requests = counted[0]
    return summary_tier.Asked(
        label, seconds, requests.gets, requests.lists, requests.objects, answer
    )


def run_in_lake(
    bench: Bench, processed_url: str, cmd: list[str], label: str, **settings: str
) -> tuple[Run, Path]:
    """A `dagster asset materialize` into the full build's processed layer; (run, its
    DAGSTER_HOME)."""
    name = f"{label.split()[0]}-{uuid.uuid4().hex[:6]}"
    home = harness.fresh_dagster_home(bench.scratch / name)
    env = {
        **bench.env,
        "DAGSTER_HOME": str(home),
        "COLLISIONS_STORAGE_URL": bench.raw_url,
        "COLLISIONS_PROCESSED_URL": processed_url,
        **settings,
    }
    measured = bench.live.measure(cmd, env, name)
    return Run(label, 0, measured.wall, measured.peak_rss_mb, "ok"), home


def select_cmd(selection: str) -> list[str]:
    return [sys.executable, "-m", "dagster", "asset", "materialize", *DEFINITIONS,
            "--select", selection]  # fmt: skip


def summary_cmd() -> list[str]:
    return select_cmd(summary_tier.SUMMARY_SELECT)


def measure_summary(
    bench: Bench, moto: Moto, window: Window, processed_url: str, repeats: int
) -> SummaryPart:
    build = harness.attempt(
        "summary build",
        lambda: run_in_lake(bench, processed_url, summary_cmd(), "summary build (whole window)")[0],
    )
    if build is not None:
        total = sum(summary_tier.read_summary(processed_url)["crashes"].to_pylist())
        build = Run(build.label, window.months, build.wall, build.rss_mb,
                    checked({"crashes": rows_in(bench.landed, window)["crashes"]},
                            {"crashes": total}))  # fmt: skip
    asked = [
        ask_counted(moto, label, repeats, lambda sql=sql: ask("processed", processed_url, sql))
        for label, sql in summary_tier.KSI_BY_BOROUGH_BY_YEAR.items()
    ]
    # One month changes (its processed files rewritten), then the summary is built again.
    middle = Window(harness.add_months(window.start, window.months // 2), 1)
    harness.attempt(
        "one processed month rebuilt",
        lambda: run_in_lake(bench, processed_url, materialize_cmd(middle), "month rebuilt")[0],
    )
    with moto.counting() as counted:
        rebuild = harness.attempt(
            "summary rebuild after one month changed",
            lambda: run_in_lake(bench, processed_url, summary_cmd(), "summary rebuild (1 month)")[
                0
            ],
        )
    # The whole history, 2012-07 to the last complete month, laid out both ways.
    summary = summary_tier.read_summary(processed_url)
    through = date.today().replace(day=1) - timedelta(days=1)
    history = summary_tier.whole_history(summary, through)
    one_file_url, per_year, sizes = summary_tier.write_layouts(bench.root, history)
    asked += [
        ask_counted(
            moto, "whole history, one file", repeats,
            lambda: ask("processed", one_file_url, summary_tier.KSI_BY_BOROUGH_BY_YEAR["summary"]),
        ),
        ask_counted(
            moto, "whole history, one file a year", repeats, summary_tier.per_year_read(per_year)
        ),
    ]  # fmt: skip
    first = date.fromisoformat(summary_tier.START_DATE)
    months = (through.year - first.year) * 12 + through.month - first.month + 1
    return SummaryPart(
        build, rebuild, counted[0].objects if counted else None, asked, sizes, history, months
    )


def summary_targets(part: SummaryPart, window: Window) -> list[Target]:
    summary, crashes, one_file, _ = part.asked
    projected = crashes.gets / window.months * part.history_months
    return [
        Target("summary: KSI by borough by year, S3 GETs", summary.gets, "≤", 20),
        Target(
            "summary: GETs of the same query over processed crashes ÷ over the summary",
            ratio(crashes.gets, summary.gets), "≥", 5,
        ),
        Target(
            "summary: wall of the query over processed crashes ÷ over the summary",
            ratio(crashes.seconds, summary.seconds), "≥", 10,
        ),
        Target(
            "summary: objects its rebuild reads after one month changed (itself and that month)",
            part.rebuild_objects, "≤", 2,
        ),
        Target("summary: whole history, one file, S3 GETs", one_file.gets, "≤", 20),
        Target(
            "summary: whole history, processed crashes' GETs (projected) ÷ the summary's",
            ratio(projected, one_file.gets), "≥", 5,
        ),
    ]  # fmt: skip


def summary_section(part: SummaryPart, window: Window) -> list[str]:
    summary, crashes, one_file, per_year = part.asked
    same = summary.answer == crashes.answer and bool(summary.answer)
    projected_gets = crashes.gets / window.months * part.history_months
    projected_seconds = crashes.seconds / window.months * part.history_months
    lines = [
        "### Summary tier",
        "",
        f'"KSI by borough by year" over the {window.months} months, through `lake.connect` '
        "(its listings included), then at the whole history's size: the measured summary's "
        f"days laid over {summary_tier.START_DATE[:7]} to the last complete month, "
        f"{part.history_rows:,} rows over {part.history_months} months, written in both "
        "layouts.",
        "",
        "| read | s | S3 GETs (lists) | objects | answers |",
        "|---|--:|--:|--:|---|",
    ]
    for asked in (summary, crashes):
        lines.append(
            f"| {asked.label}, {window.months} months | {asked.seconds:.3f} | "
            f"{asked.gets} ({asked.lists}) | {asked.objects} | {verdict(same)} |"
        )
    for asked in (one_file, per_year):
        agree = asked.answer == one_file.answer and bool(asked.answer)
        lines.append(
            f"| {asked.label} | {asked.seconds:.3f} | {asked.gets} ({asked.lists}) | "
            f"{asked.objects} | {verdict(agree)} |"
        )
    lines.append(
        f"| processed crashes, whole history (projected from {window.months} months) | "
        f"{projected_seconds:.1f} | {projected_gets:,.0f} | | |"
    )
    lines += [
        "",
        "| layout at the whole history's size | bytes |",
        "|---|--:|",
        *(f"| {name} | {size:,} |" for name, size in part.sizes.items()),
        "",
        "| summary run | wall s | peak RSS MB | check |",
        "|---|--:|--:|---|",
    ]
    for run in (part.build, part.rebuild):
        if run is not None:
            lines.append(f"| {run.label} | {run.wall:.1f} | {run.rss_mb:,.0f} | {run.check} |")
    lines.append(f"\nObjects read by the rebuild after one month changed: {part.rebuild_objects}.")
    return lines


# --- the dashboard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardPart:
    run: Run | None
    step_seconds: float | None  # the build itself, without the command's start-up
    page_bytes: int | None
    history_bytes: int | None  # the page drawn from the whole history's summary


def measure_dashboard(
    bench: Bench, window: Window, processed_url: str, part: SummaryPart
) -> DashboardPart:
    reports_url = f"{bench.root}/reports-{uuid.uuid4().hex[:6]}/collisions_reports"
    homes: list[Path] = []

    def build() -> Run:
        run, home = run_in_lake(
            bench, processed_url, select_cmd(dashboard_build.DASHBOARD_SELECT),
            f"dashboard build ({window.months} months)", COLLISIONS_REPORTS_URL=reports_url,
        )  # fmt: skip
        homes.append(home)
        return run

    run = harness.attempt("dashboard build", build)
    if run is None:
        return DashboardPart(None, None, None, None)
    [home] = homes
    key = f"{reports_url.removeprefix(f's3://{harness.BUCKET}/')}/dashboard.html"
    page = boto3.client("s3").get_object(Bucket=harness.BUCKET, Key=key)["Body"].read()
    history = dashboard_build.page_at_history(page.decode(), part.history)
    return DashboardPart(run, dashboard_build.step_seconds(home), len(page), history)


def dashboard_targets(part: DashboardPart) -> list[Target]:
    run = part.run
    return [
        Target("dashboard: its step's seconds, 4 years", part.step_seconds, "≤", 10),
        Target("dashboard: build peak RSS MB", None if run is None else run.rss_mb, "≤", 500),
        Target("dashboard: page MB", None if part.page_bytes is None else part.page_bytes / 1e6,
               "≤", 5),
        Target("dashboard: page MB at the whole history's size",
               None if part.history_bytes is None else part.history_bytes / 1e6, "≤", 5),
    ]  # fmt: skip


def dashboard_section(part: DashboardPart, summary: SummaryPart, window: Window) -> list[str]:
    if part.run is None:
        return ["### Dashboard", "", "The dashboard build failed: see the progress output."]
    step = "n/a" if part.step_seconds is None else f"{part.step_seconds:.1f}"
    projected = (
        "n/a"
        if part.step_seconds is None
        else f"{part.step_seconds * summary.history_months / window.months:.0f}"
    )
    return [
        "### Dashboard",
        "",
        f"`reports/dashboard` built with `dagster asset materialize` over the {window.months} "
        "months' summary and processed crashes on moto S3 (the command's wall includes its "
        "start-up; the step is the build itself), and its page drawn again from the summary "
        f"at the whole history's size ({summary.history_months} months). Vega's bundle is made "
        "once per machine and then read from the temporary folder.",
        "",
        "| | wall s | step s | peak RSS MB | page bytes |",
        "|---|--:|--:|--:|--:|",
        f"| {part.run.label} | {part.run.wall:.1f} | {step} | {part.run.rss_mb:,.0f} | "
        f"{part.page_bytes:,} |",
        f"| the whole history ({summary.history_months} months; step projected by months read) "
        f"| | ≤ {projected} | | {part.history_bytes:,} |",
    ]


# --- the report ---------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def build_targets(runs: dict[str, Run | None], long_months: int) -> list[Target]:
    def get(key: str, attr: str) -> float | None:
        run = runs.get(key)
        return None if run is None else getattr(run, attr)

    return [
        Target(
            "processed build wall ÷ plain read of the raw files",
            ratio(get("build", "wall"), get("read", "wall")),
            "≤",
            2,
        ),
        Target(
            "processed build wall ÷ the build without borough, severity and class columns",
            ratio(get("build", "wall"), get("baseline", "wall")),
            "≤",
            1.15,
        ),
        Target(
            f"processed build peak RSS, {long_months} months ÷ 1 month",
            ratio(get("long", "rss_mb"), get("month", "rss_mb")),
            "≤",
            1.3,
        ),
    ]


def query_targets(answers: list[Answer]) -> list[Target]:
    speed = [
        Target(
            f"({a.query.key}) raw ÷ processed wall",
            ratio(a.raw.seconds, a.processed.seconds),
            "≥",
            a.query.speedup_target,
        )
        for a in answers
    ]
    gets = [
        Target(
            f"({a.query.key}) raw ÷ processed S3 GETs",
            ratio(a.raw.requests.gets, a.processed.requests.gets),
            "≥",
            20,
        )
        for a in answers
    ]
    return speed + gets


def verdict(same: bool) -> str:
    return "ok" if same else "MISMATCH"


def build_table(runs: dict[str, Run | None]) -> list[str]:
    lines = ["| build run | months | wall s | peak RSS MB | check |", "|---|--:|--:|--:|---|"]
    shown = {id(run): run for run in runs.values() if run is not None}  # long may be the build
    for run in shown.values():
        lines.append(
            f"| {run.label} | {run.months} | {run.wall:.1f} | {run.rss_mb:,.0f} | {run.check} |"
        )
    return lines


def query_table(rows: list[tuple[str, Answer]]) -> list[str]:
    lines = [
        "| query | rows | raw s | processed s | speed-up | raw GETs (lists) | "
        "processed GETs (lists) | fewer GETs | objects read raw / processed | "
        "HEADs raw / processed | answers |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for label, a in rows:
        raw, processed = a.raw.requests, a.processed.requests
        lines.append(
            f"| {label} | {a.raw.rows:,} | {a.raw.seconds:.2f} | {a.processed.seconds:.3f} | "
            f"{a.raw.seconds / a.processed.seconds:.1f}× | {raw.gets:,} ({raw.lists}) | "
            f"{processed.gets:,} ({processed.lists}) | {raw.gets / processed.gets:.1f}× | "
            f"{raw.objects:,} / {processed.objects:,} | {raw.heads} / {processed.heads} | "
            f"{verdict(a.same)} |"
        )
    return lines


def cpu_table(rows: list[tuple[str, Answer]]) -> list[str]:
    """Where a query's time goes on loopback: this process's CPU and moto's, per layer."""
    lines = [
        "| query | raw: this process / moto CPU s | processed: this process / moto CPU s "
        "| moto ms per request, raw / processed |",
        "|---|--:|--:|--:|",
    ]
    for label, a in rows:
        per_request = [
            1000 * t.moto_cpu / max(t.requests.gets + t.requests.heads, 1)
            for t in (a.raw, a.processed)
        ]
        lines.append(
            f"| {label} | {a.raw.cpu:.2f} / {a.raw.moto_cpu:.2f} | "
            f"{a.processed.cpu:.2f} / {a.processed.moto_cpu:.2f} | "
            f"{per_request[0]:.1f} / {per_request[1]:.1f} |"
        )
    return lines


def target_table(goals: list[Target]) -> list[str]:
    lines = ["| target | value | limit | |", "|---|--:|--:|---|"]
    for goal in goals:
        value = "n/a" if goal.value is None else f"{goal.value:.2f}"
        lines.append(f"| {goal.figure} | {value} | {goal.op} {goal.limit:g} | {goal.mark} |")
    return lines


def markdown(
    context: list[str],
    runs: dict[str, Run | None],
    answers: list[Answer],
    goals: list[Target],
    diagnose: bool,
    summary: list[str],
) -> str:
    rows = [(f"({a.query.key}) {a.query.title}", a) for a in answers]
    lines = [
        "## Processed layer benchmark",
        "",
        *context,
        "",
        *build_table(runs),
        "",
        *query_table(rows),
        "",
        *summary,
        "",
        *target_table(goals),
    ]
    if diagnose:
        lines += ["", "### Where the queries' CPU goes (`--diagnose`)", "", *cpu_table(rows)]
    return "\n".join(lines)


# --- the benchmark ------------------------------------------------------------------------------


def measure_builds(
    bench: Bench, window: Window, baseline: Path
) -> tuple[dict[str, Run | None], str | None]:
    """Plain read, full build and the baseline's, then the 1-month and long builds; (runs, the
    full build's URL)."""
    built: list[str] = []

    def full() -> Run:
        run, url = run_build(bench, window)
        built.append(url)
        return run

    runs = {
        "read": harness.attempt("plain read of the raw layer", lambda: run_raw_read(bench, window)),
        "build": harness.attempt(f"processed build, {window.months} months", full),
        "baseline": harness.attempt(
            f"baseline build, {window.months} months",
            lambda: run_build(bench, window, baseline, "build without the answer columns")[0],
        ),
        "month": harness.attempt(
            "processed build, 1 month", lambda: run_build(bench, window.prefix(1))[0]
        ),
    }
    long_months = min(RSS_LONG_MONTHS, window.months)
    if long_months == window.months:  # the full build is the long run: no need to repeat it
        runs["long"] = runs["build"]
    else:
        runs["long"] = harness.attempt(
            f"processed build, {long_months} months",
            lambda: run_build(bench, window.prefix(long_months))[0],
        )
    return runs, (built[0] if built else None)


def measure_queries(moto: Moto, window: Window, urls: dict[str, str], repeats: int) -> list[Answer]:
    # A month in the middle of the window.
    month = harness.add_months(window.start, window.months // 2)
    answers = []
    for query in queries(month):
        progress(f"... query ({query.key}) {query.title}")
        answer = measure_query(moto, query, urls, repeats)
        progress(
            f"    raw {answer.raw.seconds:.2f} s, {answer.raw.requests.gets:,} GETs; "
            f"processed {answer.processed.seconds:.3f} s, "
            f"{answer.processed.requests.gets:,} GETs; "
            f"answers {verdict(answer.same)}"
        )
        answers.append(answer)
    return answers


def per_day(landed: dict[str, dict[str, int]], window: Window) -> str:
    rows = rows_in(landed, window)
    return ", ".join(
        f"{name} {rows[name]:,} ({rows[name] / window.days:,.0f} a day)" for name in DATASETS
    )


def context_lines(
    args: argparse.Namespace,
    window: Window,
    landed: dict[str, dict[str, int]],
    answers: list[Answer],
    seconds: float,
) -> list[str]:
    last = window.end - timedelta(days=1)
    flags = " --quick" if args.quick else f" --months {args.months}" if args.months != 48 else ""
    flags += " --diagnose" if args.diagnose else ""
    lines = [
        f"{window.start} to {last}: {window.days:,} raw days, {window.months} processed months. "
        f"Rows: {per_day(landed, window)}. moto S3 in server mode on loopback, "
        f"{os.cpu_count()} cores shared with moto. `python -m benchmarks lake{flags}`, "
        f"{seconds:.0f} s in all.",
        "",
        "Build wall times include each command's start-up; peak RSS is each run's own process "
        f"tree. Query times are the best of {args.repeats} after a warm-up, raw and processed "
        "in turns, each opening a `lake.connect` connection (which lists the layer) and "
        "fetching the whole answer. S3 requests are counted by moto's recorder in one more "
        "run; GETs include listings.",
    ]
    unparsed = sum(t.requests.unparsed for a in answers for t in (a.raw, a.processed))
    if unparsed:
        lines += ["", f"{unparsed} recorder lines could not be read: counts are lower bounds."]
    if args.quick:
        lines += [
            "",
            "`--quick` is a smoke test: over a few months the raw layer has few files, "
            "so the query targets are not expected to pass.",
        ]
    return lines


def benchmark(args: argparse.Namespace, scratch: Path) -> str:
    window = Window(START, 3 if args.quick else args.months)
    started = time.perf_counter()
    with harness.Processes(scratch) as live:
        moto = Moto(live, scratch)
        os.environ.update(moto.aws_env())  # lake.connect and the checks read S3 from here
        boto3.client("s3").create_bucket(Bucket=harness.BUCKET)
        root = f"s3://{harness.BUCKET}/lake-{uuid.uuid4().hex[:8]}"
        raw_url = f"{root}/collisions_raw_data"
        progress(f"landing {window.days:,} raw days of three datasets on moto S3")
        landing = time.perf_counter()
        landed = land_raw(raw_url, window)
        progress(f"    {time.perf_counter() - landing:.0f} s: {per_day(landed, window)}")
        env = {name: value for name, value in os.environ.items() if name not in _CALLER_SETTINGS}
        bench = Bench(live, env, scratch, root, raw_url, landed)
        with baseline_checkout(args.baseline, scratch) as baseline:
            runs, processed_url = measure_builds(bench, window, baseline)
        if processed_url is None:
            raise harness.ChildFailed("the processed build failed: no queries to measure")
        urls = {"raw": raw_url, "processed": processed_url}
        answers = measure_queries(moto, window, urls, args.repeats)
        progress("... the summary tier")
        part = measure_summary(bench, moto, window, processed_url, args.repeats)
        progress("... the dashboard")
        board = measure_dashboard(bench, window, processed_url, part)
    long_months = min(RSS_LONG_MONTHS, window.months)
    context = context_lines(args, window, landed, answers, time.perf_counter() - started)
    goals = (
        build_targets(runs, long_months)
        + query_targets(answers)
        + summary_targets(part, window)
        + dashboard_targets(board)
    )
    summary = summary_section(part, window) + ["", *dashboard_section(board, part, window)]
    return markdown(context, runs, answers, goals, args.diagnose, summary)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 months: a smoke test")
    parser.add_argument("--months", type=int, default=48, help="months from 2020-01 (default 48)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each query")
    parser.add_argument(
        "--baseline",
        default=BASELINE,
        help="the revision whose build is measured beside this checkout's",
    )
    parser.add_argument(
        "--diagnose", action="store_true", help="also report where each query's CPU goes"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    output = None if args.quick else harness.RESULTS / "lake.md"
    return harness.run_report(lambda scratch: benchmark(args, scratch), "lake-queries-", output)
