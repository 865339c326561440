"""Process plumbing for the mass-upload benchmark: services, measured children, checks.

Every child gets a session of its own, so Ctrl-C reaches only the benchmark, which then stops
each process group it started (Dagster's step processes included) before removing its files.
"""

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol, TypeVar

import boto3
import dagster as dg
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds
import pyarrow.fs as pa_fs
import requests

from nyc_collisions_dagster_tests.soda_fake.processes import (
    MOTO_CREDENTIALS,
    free_port,
    moto_command,
    wait_for_moto,
)

REPO = Path(__file__).resolve().parents[1]
PEAK_RSS = REPO / "benchmarks" / "peak_rss.py"
# Where each benchmark writes its stamped results, which docs/performance.md links to.
RESULTS = REPO / "docs" / "performance"
BUCKET = "nyc-application-collisions"
CRASHES = "h9gi-nx95"
_STOP_GRACE_SECONDS = 10


class ChildFailed(RuntimeError):
    """A measured child exited non-zero; the message ends with its stderr."""


@dataclass(frozen=True)
class Measured:
    wall: float
    peak_rss_mb: float
    stdout: str


class Processes:
    """Starts children in their own process groups and stops every live group on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._live: list[subprocess.Popen] = []

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in reversed(self._live):
            stop_group(process)

    def start(
        self,
        cmd: Sequence[str],
        env: dict[str, str],
        name: str,
        stdout: int | None = None,
        cwd: Path = REPO,
    ) -> subprocess.Popen:
        with (
            open(self.logs / f"{name}.err", "wb") as err,
            open(self.logs / f"{name}.out", "wb") as out,
        ):
            process = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stderr=err,
                stdout=out if stdout is None else stdout,
                start_new_session=True,
            )
        self._live.append(process)
        return process

    def run_together(self, cmds: dict[str, Sequence[str]], env: dict[str, str]) -> None:
        """Run unmeasured children side by side to their ends; raise if any failed."""
        started = {name: self.start(cmd, env, name) for name, cmd in cmds.items()}
        for name, process in started.items():
            process.wait()
            self._finish(process, name)

    def measure(
        self, cmd: Sequence[str], env: dict[str, str], name: str, cwd: Path = REPO
    ) -> Measured:
        """Run a child to its end, through peak_rss.py so that its peak RSS is its own; `cwd`
        is the checkout whose package a `python -m` child imports."""
        report = self.logs / f"{name}.rusage.json"
        process = self.start([sys.executable, str(PEAK_RSS), str(report), *cmd], env, name, cwd=cwd)
        process.wait()
        self._finish(process, name)
        figures = json.loads(report.read_text())
        stdout = (self.logs / f"{name}.out").read_text()
        return Measured(figures["wall"], figures["peak_rss_kib"] / 1024, stdout)

    def _finish(self, process: subprocess.Popen, name: str) -> None:
        stop_group(process)  # anything the child left behind in its group
        self._live.remove(process)
        if process.returncode != 0:
            tail = (self.logs / f"{name}.err").read_text(errors="replace")[-3000:]
            raise ChildFailed(f"{name} exited {process.returncode}:\n{tail}")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the child's group, SIGKILL what lingers: the child and anything it left behind."""
    if process.returncode is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def start_services(
    live: Processes,
    start: date,
    end: date,
    latency: float,
    row_cost: float,
    max_concurrent: int,
    server_model: str = "sleep",
    datasets: Sequence[str] = ("crashes",),
    server_options: Sequence[str] = (),
) -> tuple[str, dict[str, str]]:
    """The SODA test server and moto S3, started together; returns (server URL, child env).

    `server_model` is how the server spends `row_cost`: "sleep" waits, "cpu" works.
    `server_options` are more options of the server's command line, e.g. `--spool DIR`.
    """
    port = free_port()
    moto_url = f"http://127.0.0.1:{port}"
    moto = live.start(moto_command(port), os.environ.copy(), "moto")
    soda = live.start(
        [
            sys.executable,
            "-m",
            "nyc_collisions_dagster_tests.soda_fake.server",
            "--start",
            str(start),
            "--end",
            str(end),
            "--datasets",
            ",".join(datasets),
            "--latency",
            str(latency),
            "--row-cost",
            str(row_cost),
            "--max-concurrent",
            str(max_concurrent),
            "--server-model",
            server_model,
            "--port",
            "0",
            *server_options,
        ],
        os.environ.copy(),
        "soda",
        stdout=subprocess.PIPE,
    )
    line = soda.stdout.readline().decode()  # printed once the rows are generated
    if "listening on " not in line:
        raise ChildFailed(f"SODA server did not start: {line!r}")
    env = {**MOTO_CREDENTIALS, "AWS_ENDPOINT_URL_S3": moto_url}
    os.environ.update(env)  # the checks below read S3 from this process
    wait_for_moto(moto_url, moto)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return line.split("listening on ")[1].strip(), env


def source_rows(domain: str, start: date, end: date, dataset: str = CRASHES) -> int:
    """The server's rows of a dataset (its id) with crash dates in [start, end)."""
    where = f"crash_date >= '{start}T00:00:00' AND crash_date < '{end}T00:00:00'"
    response = requests.get(
        f"{domain}/resource/{dataset}.json",
        params={"$select": "count(*)", "$where": where},
        timeout=60,
    )
    return int(response.json()[0]["count"])


def add_months(day: date, months: int) -> date:
    years, month = divmod(day.month - 1 + months, 12)
    return day.replace(year=day.year + years, month=month + 1)


def checked(expected: int, **found: int | None) -> str:
    """'ok' when every count found equals the expected one, else what differed."""
    wrong = [
        f"{name} {value:,}" if value is not None else f"{name} none"
        for name, value in found.items()
        if value != expected
    ]
    return "ok" if not wrong else f"expected {expected:,}, got " + ", ".join(wrong)


def fresh_dagster_home(path: Path) -> Path:
    """A default (SQLite) instance; telemetry off so no run waits on the network."""
    path.mkdir()
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return path


def dagster_materialize(
    target: Sequence[str], select: str, first: date, last: date, config: dict | None = None
) -> list[str]:
    """The `dagster asset materialize` command for the inclusive day range first..last."""
    cmd = [sys.executable, "-m", "dagster", "asset", "materialize", *target, "--select", select]
    if first == last:
        cmd += ["--partition", str(first)]
    else:
        cmd += ["--partition-range", f"{first}...{last}"]
    if config:
        cmd += ["--config-json", json.dumps(config)]
    return cmd


@contextmanager
def as_dagster_home(home: Path) -> Iterator[None]:
    """DAGSTER_HOME set to `home` meanwhile: the pooled SQLite event log, like Dagster's default
    instance, finds its files under it."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before


def run_record(
    home: Path, asset: str, partition: str | None = None
) -> tuple[int, dict[str, object]]:
    """(partitions materialized, metadata of the latest materialization, or of the latest of
    `partition`) in a DAGSTER_HOME."""
    with as_dagster_home(home), dg.DagsterInstance.from_config(str(home)) as instance:
        key = dg.AssetKey(asset)
        partitions = instance.get_materialized_partitions(key)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=key, asset_partitions=None if partition is None else [partition]
            ),
            limit=1,
        ).records
        metadata = records[0].asset_materialization.metadata if records else {}
        return len(partitions), {name: value.value for name, value in metadata.items()}


def parquet_objects(prefix: str) -> tuple[int, int]:
    """(objects, rows) under s3://BUCKET/prefix, rows summed from the Parquet footers."""
    fs = pa_fs.S3FileSystem(
        endpoint_override=os.environ["AWS_ENDPOINT_URL_S3"], region=os.environ["AWS_DEFAULT_REGION"]
    )
    dataset = pa_ds.dataset(f"{BUCKET}/{prefix}", filesystem=fs, format="parquet")
    return len(dataset.files), dataset.count_rows()


def local_parquet_rows(folder: Path, key: str) -> tuple[int, int]:
    """(rows, distinct values of `key`) in the Parquet files under a local folder."""
    table = pa_ds.dataset(folder, format="parquet").to_table(columns=[key])
    return table.num_rows, pa_compute.count_distinct(table[key]).as_py()


def csv_object_rows(key: str) -> int:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    return pa_csv.read_csv(io.BytesIO(body), parse_options=parse).num_rows


def window_command(
    script: Path, mode: str, domain: str, start: date, end: date, *options: str
) -> list[str]:
    """A peer script's command line (originals.py, dlt_peer.py): mode, server, window."""
    window = ["--start", str(start), "--end", str(end)]
    return [sys.executable, str(script), mode, "--domain", domain, *window, *options]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stamp() -> str:
    """When, on what and by which command a result was measured."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "-uno"], capture_output=True, text=True
    ).stdout.strip()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    command = " ".join(["python", *sys.argv])
    state = " (modified)" if dirty else ""
    return (
        f"Measured {time.strftime('%Y-%m-%d')} at commit {commit}{state} with `{command}`, "
        f"on {os.cpu_count()} cores and {memory:.0f} GiB."
    )


def run_report(report: Callable[[Path], str], prefix: str, output: Path | None = None) -> int:
    """Print `report(scratch)` and return an exit status; a scratch folder lives for the run.

    With `output`, the report is also written there, stamped, for the docs to link to.

    Ctrl-C and SIGTERM unwind, so every child group is stopped and the scratch folder removed
    (SIGINT too: a shell that starts a benchmark in the background would leave it ignored).
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        try:
            measured = stamp()  # the checkout the run starts from, not the one it ends in
            text = report(Path(scratch))
            print(text, flush=True)
            if output is not None:
                output.parent.mkdir(parents=True, exist_ok=True)
                output.write_text(f"{text.rstrip()}\n\n{measured}\n")
        except KeyboardInterrupt:
            progress("interrupted: services and runs stopped")
            return 130
        except ChildFailed as exc:
            progress(str(exc))
            return 1
    return 0


class Outcome(Protocol):
    wall: float
    rss_mb: float
    check: str


R = TypeVar("R", bound=Outcome)


def attempt(label: str, run: Callable[[], R]) -> R | None:
    """One run, reported on stderr; a failed child is reported and leaves its row empty."""
    progress(f"... {label}")
    try:
        result = run()
    except ChildFailed as exc:
        progress(str(exc))
        return None
    progress(f"    {result.wall:.1f} s, {result.rss_mb:.0f} MB peak RSS, check {result.check}")
    return result
