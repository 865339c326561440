"""`dagster dev` serves the UI's backfill end to end, and the sample instance config stays valid."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import yaml

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster_tests.generator import FIELDS, Row

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
SAMPLE_INSTANCE_CONFIG = REPO_ROOT / "deploy" / "dagster.yaml"
ASSETS = list(DATASETS)
DAYS = [(date(2024, 1, 1) + timedelta(days=i)).isoformat() for i in range(5)]

# The test instance: the default QueuedRunCoordinator, dequeuing every second instead of every
# 5, and no daemons the test does not use (they would compete for the CPU). The backfill
# daemon's 30 s loop is fixed in Dagster (DEFAULT_DAEMON_INTERVAL_SECONDS), not configurable.
TEST_INSTANCE_CONFIG = {
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {"dequeue_interval_seconds": 1},
    },
    "auto_materialize": {"enabled": False, "use_sensors": False},
    "freshness": {"enabled": False},
    "telemetry": {"enabled": False},
}

WORKSPACE = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""
# What the UI's "Launch backfill" button sends for a partition range of selected assets.
LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) { __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack } } }
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename
    ... on PartitionBackfill { status error { message } }
    ... on Error { message } } }
"""
RUNS = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { __typename
    ... on Runs { results { runId status assetSelection { path } tags { key value } } }
    ... on Error { message } } }
"""
RUN_ERRORS = """
query RunErrors($runId: ID!) {
  logsForRun(runId: $runId) { __typename
    ... on EventConnection { events { __typename
        ... on MessageEvent { message }
        ... on ErrorEvent { error { message causes { message } } } } } } }
"""
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _group_members(pgid: int) -> list[str]:
    """The live processes of a process group, from Linux's /proc; zombies, which are dead and
    only wait for their new parent to reap them, are left out."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name, in parentheses, may hold spaces: split after its closing one.
            name, _, fields = stat.read_text().rpartition(")")
        except OSError:  # ended meanwhile
            continue
        state, _, group = fields.split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(f"{stat.parent.name} {name.partition('(')[2]}")
    return members


class DagsterDev:
    """A running `dagster dev` in its own process group, and its webserver's GraphQL API."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with log_path.open("wb") as log:
            # Its own session and process group: one killpg reaches the webserver, the daemon,
            # the code server and the run workers that `dagster dev` starts.
            self.process = subprocess.Popen(
                [DAGSTER, "dev", "-h", "127.0.0.1", "-p", str(self.port),
                 "-m", "nyc_collisions_dagster.definitions"],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until_loaded(self, timeout: float) -> None:
        """Until the webserver answers and the code location is loaded."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"dagster dev exited:\n{self.log_tail()}"
            try:
                workspace = self.graphql(WORKSPACE)["workspaceOrError"]
            except requests.ConnectionError:
                workspace = {}
            entries = workspace.get("locationEntries", [])
            for entry in entries:
                location = entry["locationOrLoadError"] or {}
                assert location.get("__typename") != "PythonError", location["message"]
            if any(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries):
                return
            assert time.monotonic() < deadline, f"not loaded in {timeout} s:\n{self.log_tail()}"
            time.sleep(0.25)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the whole group, SIGKILL what is left after `timeout`, reap the leader.

        `dagster dev` treats SIGTERM as SIGINT, so it ignores it where it inherited an ignored
        SIGINT (pytest run as a background job of a non-interactive shell): SIGKILL ends it then.
        """
        os.killpg(self.pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # The leader is gone; its children may still be shutting down.
        deadline = time.monotonic() + timeout
        while (left := _group_members(self.pgid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if left:
            os.killpg(self.pgid, signal.SIGKILL)
            raise AssertionError(f"processes of dagster dev outlived it by {timeout} s: {left}")


@pytest.fixture
def dagster_dev(cli_env: dict[str, str], aws_env: dict[str, str], s3_storage: str,
                tmp_path: Path) -> Iterator[DagsterDev]:
    home = Path(cli_env["DAGSTER_HOME"])
    (home / "dagster.yaml").write_text(yaml.safe_dump(TEST_INSTANCE_CONFIG))
    env = {**cli_env, **aws_env, "COLLISIONS_STORAGE_URL": s3_storage}
    dev = DagsterDev(env, tmp_path / "dagster_dev.log")
    try:
        yield dev
    finally:
        dev.stop()
        assert not _port_is_open(dev.port), "the webserver port is still open"


def _run_errors(dev: DagsterDev, run_id: str) -> list[str]:
    """The error messages of a run's events, to explain a backfill that did not succeed."""
    events = dev.graphql(RUN_ERRORS, runId=run_id)["logsForRun"].get("events", [])
    return [
        " <- ".join(e["message"].strip() for e in [event["error"], *event["error"]["causes"]])
        if event.get("error") else event["message"]
        for event in events
        if event.get("error") or event["__typename"] == "RunFailureEvent"
    ]


def _rows_on(rows: list[Row], asset: str, day: str) -> int:
    at = FIELDS[asset].index("crash_date")
    return sum(1 for row in rows if str(row[at]).startswith(day))


@pytest.mark.webserver
def test_ui_backfill_lands_every_day_in_a_single_run(
    dagster_dev: DagsterDev, s3_storage: str, soda_rows: dict[str, list[Row]]
) -> None:
    dagster_dev.wait_until_loaded(timeout=60)

    params = {"assetSelection": [{"path": [name]} for name in ASSETS], "partitionNames": DAYS}
    launched = dagster_dev.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    # The daemon picks the backfill up on its next 30 s tick and marks it done on a later one.
    deadline = time.monotonic() + 120
    while True:
        backfill = dagster_dev.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
        if backfill.get("status") in FINISHED or time.monotonic() > deadline:
            break
        time.sleep(1)
    runs = dagster_dev.graphql(RUNS, tags=[{"key": "dagster/backfill", "value": backfill_id}])
    runs = runs["runsOrError"]["results"]
    assert backfill.get("status") == "COMPLETED_SUCCESS", "\n".join(
        [f"backfill {backfill}"]
        + [f"run {run['runId']} {run['status']}: {_run_errors(dagster_dev, run['runId'])}"
           for run in runs]
        + ["dagster dev log:", dagster_dev.log_tail()]
    )

    # Single-run backfill policy, and one partitioning shared by the three assets: the whole
    # backfill is a single run of the three assets over the 5-day range.
    assert len(runs) == 1, runs
    run = runs[0]
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS"
    assert sorted(key["path"][-1] for key in run["assetSelection"]) == sorted(ASSETS)
    assert tags["dagster/asset_partition_range_start"] == DAYS[0]
    assert tags["dagster/asset_partition_range_end"] == DAYS[-1]

    s3 = boto3.client("s3")
    bucket, prefix = s3_storage.removeprefix("s3://").split("/", 1)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    expected_keys = {f"{prefix}/{asset}/{day}.parquet" for asset in ASSETS for day in DAYS}
    assert {obj["Key"] for obj in listed.get("Contents", [])} == expected_keys
    for asset in ASSETS:
        for day in DAYS:
            body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{asset}/{day}.parquet")["Body"]
            rows = pq.read_metadata(pa.BufferReader(body.read())).num_rows
            assert rows == _rows_on(soda_rows[asset], asset, day) > 0, (asset, day)


def test_sample_instance_config_is_valid_and_keeps_a_socrata_slot_free(tmp_path: Path) -> None:
    # A copy, so that the instance's storage lands in tmp_path and not beside the sample.
    shutil.copy(SAMPLE_INSTANCE_CONFIG, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        concurrency = instance.get_concurrency_config()
    pool, queue = concurrency.pool_config, concurrency.run_queue_config
    assert queue is not None
    backfill_runs = {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits}
    assert pool.pool_granularity is not None and pool.pool_granularity.value == "op"
    assert pool.default_pool_limit is not None and queue.max_concurrent_runs > 0
    # The running backfills' steps (a backfill run holds a step per asset) never take every
    # slot of the socrata_api pool: the daily update can always start.
    assert backfill_runs["dagster/backfill"] * len(ASSETS) < pool.default_pool_limit
