"""`dagster dev` serves the UI's backfill, the processed month its automation sensor builds after
it, and a check's *Execute* end to end; and the sample instance config stays valid."""

import shutil
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from nyc_collisions_dagster.constants import DATASETS, PROCESSED_PREFIX
from nyc_collisions_dagster.instance.sqlite import PooledSqliteEventLogStorage
from nyc_collisions_dagster.raw.recording import BATCHED_INSTANCE
from nyc_collisions_dagster_tests.soda_fake.generator import FIELDS, Row
from nyc_collisions_dagster_tests.soda_fake.processes import ServerProcess, free_port, port_is_open
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer
from nyc_collisions_dagster_tests.ui_api import FINISHED, RUN_ENDED, Webserver

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
MODULE = "nyc_collisions_dagster.definitions"
SAMPLE_INSTANCE_CONFIG = REPO_ROOT / "deploy" / "dagster.yaml"
ASSETS = list(DATASETS)
# A whole month, so that its processed month has all its raw days.
MONTH = "2024-02"
DAYS = [(date(2024, 2, 1) + timedelta(days=i)).isoformat() for i in range(29)]

# The test instance: the default QueuedRunCoordinator, dequeuing every second instead of every
# 5, and no daemons the test does not use (they would compete for the CPU). The backfill
# daemon's 30 s loop is fixed in Dagster (DEFAULT_DAEMON_INTERVAL_SECONDS), not configurable;
# so is the automation sensor's 60 s (its minimum_interval_seconds, in the code).
TEST_INSTANCE_CONFIG = {
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {"dequeue_interval_seconds": 1},
    },
    "auto_materialize": {"enabled": True, "use_sensors": True},
    "freshness": {"enabled": False},
    "telemetry": {"enabled": False},
}


class DagsterDev(Webserver):
    """A running `dagster dev`: its webserver, daemon, code server and run workers are one
    process group, stopped together."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        # `dagster dev -m` names the code location after the module.
        super().__init__(free_port(), location=MODULE)
        self.server = ServerProcess(
            [DAGSTER, "dev", "-h", "127.0.0.1", "-p", str(self.port), "-m", MODULE],
            env,
            log_path,
            cwd=REPO_ROOT,
        )


@pytest.fixture
def dagster_dev(
    cli_env: dict[str, str],
    aws_env: dict[str, str],
    s3_storage: str,
    month_server: SodaServer,
    tmp_path: Path,
) -> Iterator[DagsterDev]:
    home = Path(cli_env["DAGSTER_HOME"])
    # The sample instance's event log (its connections kept open), which the webserver, the
    # daemon and the runs share here as they do after `make dev`.
    sample = yaml.safe_load(SAMPLE_INSTANCE_CONFIG.read_text())
    config = {**TEST_INSTANCE_CONFIG, "event_log_storage": sample["event_log_storage"]}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {
        **cli_env,
        **aws_env,
        **BATCHED_INSTANCE,  # as `make dev` starts it
        "SOCRATA_DOMAIN": month_server.url,
        "COLLISIONS_STORAGE_URL": s3_storage,
        "COLLISIONS_PROCESSED_URL": _processed(s3_storage),
    }
    dev = DagsterDev(env, tmp_path / "dagster_dev.log")
    try:
        yield dev
    finally:
        dev.server.stop()
        assert not port_is_open(dev.port), "the webserver port is still open"


def _processed(raw_url: str) -> str:
    return raw_url.replace("collisions_raw_data", "collisions_processed_data")


def _rows_on(rows: list[Row], asset: str, day: str) -> int:
    at = FIELDS[asset].index("crash_date")
    return sum(1 for row in rows if str(row[at]).startswith(day))


@pytest.mark.webserver
def test_ui_backfill_lands_every_day_in_a_single_run_then_automation_builds_the_month(
    dagster_dev: DagsterDev, s3_storage: str, month_rows: dict[str, list[Row]]
) -> None:
    dagster_dev.wait_until_loaded(timeout=60, alive=dagster_dev.server.assert_running)
    backfill_id = dagster_dev.launch_backfill(ASSETS, DAYS)

    # The daemon picks the backfill up on its next 30 s tick and marks it done on a later one.
    deadline = time.monotonic() + 120
    while (status := dagster_dev.backfill_status(backfill_id)) not in FINISHED:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    runs = dagster_dev.backfill_runs(backfill_id)
    assert status == "COMPLETED_SUCCESS", "\n".join(
        [f"backfill {status}"]
        + [
            f"run {run['runId']} {run['status']}: {dagster_dev.run_errors(run['runId'])}"
            for run in runs
        ]
        + ["dagster dev log:", dagster_dev.server.log_tail()]
    )

    # Single-run backfill policy, and one partitioning shared by the three assets: the whole
    # backfill is a single run of the three assets over the month's range.
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["status"] == "SUCCESS"
    assert sorted(key["path"][-1] for key in run["assetSelection"]) == sorted(ASSETS)
    assert run["tags"]["dagster/asset_partition_range_start"] == DAYS[0]
    assert run["tags"]["dagster/asset_partition_range_end"] == DAYS[-1]

    s3 = boto3.client("s3")
    bucket, prefix = s3_storage.removeprefix("s3://").split("/", 1)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    expected_keys = {f"{prefix}/{asset}/{day}.parquet" for asset in ASSETS for day in DAYS}
    assert {obj["Key"] for obj in listed.get("Contents", [])} == expected_keys
    for asset in ASSETS:
        for day in DAYS:
            body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{asset}/{day}.parquet")["Body"]
            rows = pq.read_metadata(pa.BufferReader(body.read())).num_rows
            assert rows == _rows_on(month_rows[asset], asset, day) > 0, (asset, day)

    # The lake check runs on its own from the asset's Checks tab: one step, no rows fetched.
    assert dagster_dev.asset_checks("crashes")["lake_matches_source"] == "CAN_EXECUTE"
    checked = dagster_dev.execute_check("crashes", "lake_matches_source")
    deadline = time.monotonic() + 120
    while dagster_dev.run(checked)["status"] not in RUN_ENDED and time.monotonic() < deadline:
        time.sleep(1)
    assert dagster_dev.run(checked)["status"] == "SUCCESS", dagster_dev.run_errors(checked)
    assert dagster_dev.step_statuses(checked) == {"crashes": "SUCCESS"}
    messages = [event["message"] for event in dagster_dev.messages(checked)]
    assert any("All 29 landed days match Socrata" in message for message in messages), messages
    assert not any("Materialized value" in message for message in messages)

    # Nobody asked for the processed month: the automation sensor, running by default in the
    # daemon `dagster dev` starts, requested it once its raw days had all landed.
    processed = [[PROCESSED_PREFIX, name] for name in ASSETS]
    deadline = time.monotonic() + 180
    while (stats := [dagster_dev.partition_stats(key) for key in processed]) and not all(
        s["numMaterialized"] == 1 for s in stats
    ):
        assert not any(s["numFailed"] for s in stats), (stats, dagster_dev.server.log_tail())
        assert time.monotonic() < deadline, (stats, dagster_dev.server.log_tail())
        time.sleep(1)
    prefix = _processed(s3_storage).removeprefix(f"s3://{bucket}/")
    for asset in ASSETS:
        key = f"{prefix}/{asset}/year=2024/month=02/{MONTH}.parquet"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        rows = pq.read_metadata(pa.BufferReader(body.read())).num_rows
        assert rows == sum(_rows_on(month_rows[asset], asset, day) for day in DAYS), asset


def test_sample_instance_config_is_valid_and_keeps_a_socrata_slot_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy, so that the instance's storage lands in tmp_path and not beside the sample; its
    # event log goes where Dagster's default would, under DAGSTER_HOME.
    shutil.copy(SAMPLE_INSTANCE_CONFIG, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.event_log_storage) is PooledSqliteEventLogStorage
        concurrency = instance.get_concurrency_config()
        # `make dev`'s daemon evaluates the processed layer's automation sensor.
        assert "ASSET" in instance.get_required_daemon_types()
        assert instance.auto_materialize_use_sensors
    pool, queue = concurrency.pool_config, concurrency.run_queue_config
    assert queue is not None
    backfill_runs = {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits}
    assert pool.pool_granularity is not None and pool.pool_granularity.value == "op"
    assert pool.default_pool_limit is not None and queue.max_concurrent_runs > 0
    # The running backfills' steps (a backfill run holds a step per asset) never take every
    # slot of the socrata_api pool: the daily update can always start.
    assert backfill_runs["dagster/backfill"] * len(ASSETS) < pool.default_pool_limit
