"""Fixtures: the SODA test server, moto S3 in server mode, storage and resources, a clean env,
PostgreSQL and the production topology."""

import os
import shutil
import subprocess
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from nyc_collisions_dagster.processed.assets import processed_tables
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager, ProcessedLake
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests import real_data
from nyc_collisions_dagster_tests.postgres import PostgresServer
from nyc_collisions_dagster_tests.s3_faults import S3FaultProxy
from nyc_collisions_dagster_tests.soda_fake.generator import DATASET_IDS, FIELDS, Row, generate
from nyc_collisions_dagster_tests.soda_fake.processes import (
    MOTO_CREDENTIALS,
    free_port,
    moto_command,
    wait_for_moto,
)
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer
from nyc_collisions_dagster_tests.soda_fake.spooled_table import SpooledTable, spool_generated
from nyc_collisions_dagster_tests.topology import Topology, started_topology

REPO_ROOT = Path(__file__).resolve().parents[1]
BUCKET = "nyc-application-collisions"
_SETTINGS = (
    "SOCRATA_DOMAIN",
    "SOCRATA_APP_TOKEN",
    "SOCRATA_API",
    "COLLISIONS_STORAGE_URL",
    "COLLISIONS_PROCESSED_URL",
    "COLLISIONS_REPORTS_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "DAGSTER_HOME",
)

SODA_START, SODA_END = date(2024, 1, 1), date(2024, 1, 11)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# Whole months for the processed layer, few rows a day so that a month lands in seconds.
MONTHS_START, MONTHS_END = date(2024, 2, 1), date(2024, 5, 1)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the developer's shell leaks into a test."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)


TRANSPORTS = ("soda2", "soda3")
SUITE_APP_TOKEN = "suite-app-token"
_SERVERS = {"soda_server", "make_soda_server", "month_server"}


_TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its tier, the folder it lives in: `pytest -m unit` runs one.
    The test server's own tests start it in-process, which makes them integration tests."""
    for item in items:
        parts = Path(item.fspath).relative_to(Path(__file__).parent).parts
        tier = parts[0] if parts[0] in _TIERS else "integration"
        item.add_marker(getattr(pytest.mark, tier))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that reads a SODA test server through the project runs on both transports.

    Left out: the server's own tests (they speak HTTP to it directly), the UI and production
    topology tests (minutes of servers, which no transport changes) and tests marked
    one_transport.
    """
    if _SERVERS.isdisjoint(metafunc.fixturenames) or metafunc.module.__name__.startswith(
        "nyc_collisions_dagster_tests.soda_fake"
    ):
        return
    if any(
        metafunc.definition.get_closest_marker(m) for m in ("webserver", "deploy", "one_transport")
    ):
        return
    # SUITE_TRANSPORTS=soda2 (make test-fast) runs them on one: the loop, not the verdict.
    transports = os.environ.get("SUITE_TRANSPORTS", ",".join(TRANSPORTS)).split(",")
    metafunc.parametrize("soda_api", transports, indirect=True)


@pytest.fixture(autouse=True)
def soda_api(
    request: pytest.FixtureRequest, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The transport of this test, set the way an operator would: in the environment, which every
    SocrataResource without an api or a token of its own reads at run time (CLI runs included).
    soda2 leaves the default, auto, which reads SODA 2.1 while it answers."""
    api = getattr(request, "param", "soda2")
    if api == "soda3":
        monkeypatch.setenv("SOCRATA_API", "soda3")
        monkeypatch.setenv("SOCRATA_APP_TOKEN", SUITE_APP_TOKEN)
    return api


@contextmanager
def _moto_server(**env: str) -> Iterator[str]:
    """A real S3 API on loopback: moto in server mode, in its own process."""
    port = free_port()
    process = subprocess.Popen(
        moto_command(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_moto(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with _moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto_with_auth(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto that checks credentials once the bucket exists: any key but its own is refused."""
    with _moto_server(INITIAL_NO_AUTH_ACTION_COUNT="1") as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The standard AWS settings pointing at moto, set in this process and returned for children."""
    env = {**MOTO_CREDENTIALS, "AWS_ENDPOINT_URL_S3": moto_endpoint}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def s3_storage(aws_env: dict[str, str]) -> str:
    """A fresh prefix in the production bucket name, on moto."""
    s3 = boto3.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/collisions_raw_data"


@pytest.fixture
def s3_fault_proxy(
    moto_endpoint: str, s3_storage: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[S3FaultProxy]:
    """A fault-injecting proxy in front of moto, started, as the lake's S3 endpoint in this
    process (the bucket already made on moto); faults off until a test sets them."""
    proxy = S3FaultProxy(moto_endpoint, seed=1).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def local_storage(tmp_path: Path) -> str:
    return str(tmp_path / "collisions_raw_data")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 96 KB tmpfs, mounted for the test (the suite runs as root where it may): a few day
    files of crashes fit (about 11 KB each), then the disk is full."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here to make a small disk with")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        # Lazily if a file of it is still open (a writer thread of a failed run ending).
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture
def resources(soda_server: SodaServer, local_storage: str) -> dict[str, object]:
    return {
        "socrata": SocrataResource(domain=soda_server.url, max_retries=2, backoff_factor=0.05),
        "io_manager": ParquetIOManager(storage_url=local_storage),
    }


@pytest.fixture
def cli_env(soda_server: SodaServer, tmp_path: Path) -> dict[str, str]:
    """The environment a user's shell would give `dagster asset materialize`."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    return {
        **os.environ,
        "SOCRATA_DOMAIN": soda_server.url,
        "COLLISIONS_STORAGE_URL": str(tmp_path / "collisions_raw_data"),
        "COLLISIONS_REPORTS_URL": str(tmp_path / "collisions_reports"),
        "DAGSTER_HOME": str(home),
    }


@pytest.fixture(scope="session")
def soda_rows() -> dict[str, list[Row]]:
    """Generated crashes, persons and vehicles for crash dates 2024-01-01 … 2024-01-10."""
    return generate(SODA_START, SODA_END)


@pytest.fixture(scope="session")
def soda_server(soda_rows: dict[str, list[Row]]) -> Iterator[SodaServer]:
    """A shared server of ``soda_rows``; treat it as read-only (no faults, mutations or log
    assertions): use ``make_soda_server`` for those."""
    with SodaServer(soda_rows) as server:
        yield server


@pytest.fixture
def make_soda_server(soda_rows: dict[str, list[Row]]) -> Iterator[Callable[..., SodaServer]]:
    """Start private servers: ``make_soda_server(rows=None, **SodaServer options)``; rows
    default to ``soda_rows``. Every server started is stopped at teardown."""
    started: list[SodaServer] = []

    def make(
        rows: Mapping[str, Sequence[Row | Mapping[str, Any]]] | None = None, **options: Any
    ) -> SodaServer:
        server = SodaServer(soda_rows if rows is None else rows, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def make_spooled_soda_server(
    make_soda_server: Callable[..., SodaServer], tmp_path: Path
) -> Iterator[Callable[..., SodaServer]]:
    """Start servers of generated days written to a spool on disk and served read-only from
    it, as the scaling benchmark serves 14 years (spooled_table.py):
    ``make_spooled_soda_server(start, end, **spool_generated options)``."""
    tables: list[SpooledTable] = []

    def make(start: date, end: date, **options: Any) -> SodaServer:
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        spooled = spool_generated(folder, start, end, list(DATASET_IDS), **options)
        tables.extend(spooled)
        return make_soda_server(rows={}, tables=spooled)

    yield make
    for table in tables:
        table.close()


@pytest.fixture(scope="session")
def soda_real_rows() -> dict[str, list[Row]]:
    """The real linked 2024-01-01 … 05 rows plus the January 2022 crashes from shared/."""
    if not real_data.available():
        pytest.skip(f"real NYC collisions data not found in {real_data.SHARED_DATA}")
    return real_data.load_all()


@pytest.fixture(scope="session")
def month_rows() -> dict[str, list[Row]]:
    """Generated rows of the three datasets for February, March and April 2024, 4-8 crashes a day,
    with March 10 (clocks spring forward) and a few unreadable times on March 3."""
    rows = generate(MONTHS_START, MONTHS_END, crashes_per_day=(4, 8))
    return {name: with_times(name, table) for name, table in rows.items()}


def with_times(dataset: str, rows: list[Row]) -> list[Row]:
    """Crash times that test the processed layer's rules, on two days of the rows."""
    index = FIELDS[dataset].index("crash_time")
    times = {"2024-03-10": ["2:30", "1:59", "3:00"], "2024-03-03": ["24:00", "7:5", "9:05"]}
    out, seen = [], Counter[str]()
    for row in rows:
        day = row[FIELDS[dataset].index("crash_date")][:10]
        if day in times and seen[day] < len(times[day]):
            row = row[:index] + (times[day][seen[day]],) + row[index + 1 :]
            seen[day] += 1
        out.append(row)
    return out


@pytest.fixture(scope="session")
def month_server(month_rows: dict[str, list[Row]]) -> Iterator[SodaServer]:
    """A shared, read-only server of ``month_rows``."""
    with SodaServer(month_rows) as server:
        yield server


@pytest.fixture(scope="session")
def layer_resources() -> Callable[[SodaServer, Path], dict[str, object]]:
    """``layer_resources(server, root)``: resources of both layers reading ``server`` and writing
    under ``root``: ``collisions_raw_data`` and ``collisions_processed_data``."""

    def make(server: SodaServer, root: Path) -> dict[str, object]:
        return {
            "socrata": SocrataResource(domain=server.url, max_retries=2, backoff_factor=0.05),
            "io_manager": ParquetIOManager(storage_url=str(root / "collisions_raw_data")),
            "processed_lake": ProcessedLake(storage_url=str(root / "collisions_processed_data")),
        }

    return make


@pytest.fixture(scope="session")
def processed_months(
    month_server: SodaServer,
    layer_resources: Callable[[SodaServer, Path], dict[str, object]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """February to April 2024 landed raw and processed by Dagster, once for the session, under
    the folder returned (collisions_raw_data, collisions_processed_data): treat it as read-only
    and work on a copy."""
    root = tmp_path_factory.mktemp("processed_months")
    resources = layer_resources(month_server, root)
    days = {RANGE_START: "2024-02-01", RANGE_END: "2024-04-30"}
    assert dg.materialize(collision_assets, resources=resources, tags=days).success
    months = {RANGE_START: "2024-02", RANGE_END: "2024-04"}
    assert dg.materialize([processed_tables], resources=resources, tags=months).success
    return root


@pytest.fixture
def both_layers(
    layer_resources: Callable[[SodaServer, Path], dict[str, object]],
    month_server: SodaServer,
    tmp_path: Path,
) -> dict[str, object]:
    """Resources of both layers: ``month_server`` in, folders under tmp_path out."""
    return layer_resources(month_server, tmp_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL from Debian's package, for the deploy/ instance configs; one per session."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_env(postgres_server: PostgresServer) -> dict[str, str]:
    """A fresh database, as the DAGSTER_POSTGRES_* settings the deploy/ instance configs read."""
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(database)
    return postgres_server.dagster_env(database)


@pytest.fixture
def production_topology(
    soda_server: SodaServer,
    aws_env: dict[str, str],
    s3_storage: str,
    postgres_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[Topology]:
    """deploy/vm/'s code server and webserver, started (the test starts the daemon), with the
    settings a production machine would give them; all stopped at teardown."""
    with started_topology(soda_server.url, {**aws_env, **postgres_env}, s3_storage, tmp_path) as t:
        yield t
