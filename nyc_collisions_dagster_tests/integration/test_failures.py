"""Nothing is lost under faults: retries, atomic files, idempotent re-runs, clear failures."""

import socket
import tempfile
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.assets import collision_assets, crashes, vehicles
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.outcomes import (
    DAYS,
    FIVE_DAYS,
    failure_message,
    file_rows,
    raw_resources,
    typed_rows,
)
from nyc_collisions_dagster_tests.soda_fake.generator import crash_date, to_api_dict

REPO_ROOT = Path(__file__).resolve().parents[2]


def _assert_lake_matches(lake: Path, rows, names=("crashes", "persons", "vehicles")) -> None:
    for name in names:
        for day in DAYS:
            assert file_rows(str(lake / name / f"{day}.parquet")) == typed_rows(
                name, rows[name], day
            )


def test_twenty_percent_faults_lose_and_repeat_nothing(
    make_soda_server, soda_rows, tmp_path
) -> None:
    server = make_soda_server(fault_rate=0.2, slow_seconds=1.0, retry_after="1", seed=7)
    resources = raw_resources(
        server, tmp_path, page_size=400, read_timeout_seconds=0.4, backoff_factor=0.02
    )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        collision_assets, resources=resources, tags=FIVE_DAYS, instance=instance
    )
    assert result.success
    _assert_lake_matches(tmp_path, soda_rows)
    seen = {r.fault for r in server.requests if r.fault}
    assert seen == {"429", "500", "503", "disconnect", "slow"}
    faults = sum(1 for r in server.requests if r.fault)
    retries = sum(
        e.materialization.metadata["retries"].value
        for e in result.get_asset_materialization_events()
        if e.partition == "2024-01-05"  # the run summary is on the newest partition
    )
    assert retries >= faults > 5
    logged = [
        e.user_message for e in instance.all_logs(result.run_id) if " retries, " in e.user_message
    ]
    assert len(logged) == 3  # one "N rows in M requests (R retries, ...)" line per asset


def test_a_source_that_stays_down_fails_the_run_clearly_and_in_bounded_time(
    make_soda_server, tmp_path
) -> None:
    server = make_soda_server()
    server.fail_always(503)
    started = time.monotonic()
    result = dg.materialize(
        [crashes],
        resources=raw_resources(server, tmp_path, max_retries=3, backoff_factor=0.05),
        partition_key="2024-01-02",
        raise_on_error=False,
    )
    assert not result.success
    assert time.monotonic() - started < 30
    message = failure_message(result)
    assert "HTTP 503 after 3 retries" in message and "h9gi-nx95" in message


def test_a_run_failing_halfway_materializes_the_days_written_and_a_rerun_of_the_rest_completes(
    make_soda_server, soda_rows, tmp_path
) -> None:
    server = make_soda_server()
    pages = []

    def break_after_two_pages(path: str, params: dict[str, str]) -> None:
        if path.endswith(".csv"):
            pages.append(params)
            if len(pages) == 3:
                server.fail_always(500)

    server.on_request = break_after_two_pages
    instance = dg.DagsterInstance.ephemeral()
    resources = raw_resources(
        server, tmp_path, page_size=800, max_workers=1, max_retries=1, backoff_factor=0.01
    )
    failed = dg.materialize(
        [crashes], resources=resources, tags=FIVE_DAYS, instance=instance, raise_on_error=False
    )
    assert not failed.success
    written = sorted(p.name for p in (tmp_path / "crashes").iterdir())
    assert written == ["2024-01-01.parquet", "2024-01-02.parquet"]  # whole days only, no temp files
    for name in written:
        day = date.fromisoformat(name.removesuffix(".parquet"))
        assert file_rows(str(tmp_path / "crashes" / name)) == typed_rows(
            "crashes", soda_rows["crashes"], day
        )
    # The days written are materialized, with their rows; the run fails naming the others.
    keys = [d.isoformat() for d in DAYS]
    status = instance.get_status_by_partition(dg.AssetKey("crashes"), keys, daily_partitions)
    assert [status[k] for k in keys] == [dg.AssetPartitionStatus.MATERIALIZED] * 2 + [
        dg.AssetPartitionStatus.FAILED
    ] * 3
    recorded = {
        e.partition: e.materialization.metadata["dagster/row_count"].value
        for e in failed.get_asset_materialization_events()
    }
    assert recorded == {
        k: len(typed_rows("crashes", soda_rows["crashes"], date.fromisoformat(k))) for k in keys[:2]
    }
    message = failure_message(failed)
    assert (
        "crashes: 2 of 5 days written and materialized; not written: 2024-01-03...2024-01-05"
        in (message)
    )
    assert "HTTP 500" in message  # and why

    # Resuming: only the failed and missing days.
    server.set_faults(rate=0.0)
    rest = {**FIVE_DAYS, "dagster/asset_partition_range_start": "2024-01-03"}
    assert dg.materialize([crashes], resources=resources, tags=rest, instance=instance).success
    _assert_lake_matches(tmp_path, soda_rows, names=("crashes",))
    status = instance.get_status_by_partition(dg.AssetKey("crashes"), keys, daily_partitions)
    assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}


def test_rerunning_an_unchanged_partition_gives_the_same_rows_in_key_order(
    resources, local_storage
) -> None:
    path = Path(local_storage) / "vehicles" / "2024-01-04.parquet"
    assert dg.materialize([vehicles], partition_key="2024-01-04", resources=resources).success
    first = pq.read_table(path)
    assert dg.materialize([vehicles], partition_key="2024-01-04", resources=resources).success
    second = pq.read_table(path)
    assert first.equals(second)
    keys = second.column("unique_id").to_pylist()
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_malformed_values_become_null_and_are_counted(
    make_soda_server, soda_rows, tmp_path
) -> None:
    server = make_soda_server()
    crash = to_api_dict(
        "crashes",
        next(r for r in soda_rows["crashes"] if crash_date("crashes", r).startswith("2024-01-03")),
    )
    server.upsert("crashes", [crash | {"number_of_persons_injured": "N/A", "latitude": "abc"}])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [crashes],
        resources=raw_resources(server, tmp_path),
        partition_key="2024-01-03",
        instance=instance,
    )
    assert result.success
    [row] = [
        r
        for r in file_rows(str(tmp_path / "crashes" / "2024-01-03.parquet"))
        if r["collision_id"] == int(crash["collision_id"])
    ]
    assert row["number_of_persons_injured"] is None and row["latitude"] is None
    assert row["longitude"] is not None
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["coerced_values"].value == {
        "number_of_persons_injured": 1,
        "latitude": 1,
    }
    assert any(
        "written as null: {'latitude': 1, 'number_of_persons_injured': 1}" in e.user_message
        for e in instance.all_logs(result.run_id)
    )


def test_an_invalid_app_token_fails_clearly(make_soda_server, tmp_path) -> None:
    server = make_soda_server(app_tokens={"good-token"})
    result = dg.materialize(
        [crashes],
        resources=raw_resources(server, tmp_path, app_token="bad-token-value"),
        partition_key="2024-01-02",
        raise_on_error=False,
    )
    message = failure_message(result)
    assert "HTTP 403" in message and "SOCRATA_APP_TOKEN" in message
    assert "bad-token-value" not in message


def test_a_temporary_folder_that_cannot_be_written_fails_at_once(
    make_soda_server, tmp_path, monkeypatch
) -> None:
    server = make_soda_server()
    missing = tmp_path / "no-such-folder"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    started = time.monotonic()
    result = dg.materialize(
        [crashes],
        resources=raw_resources(server, tmp_path / "lake"),
        tags=FIVE_DAYS,
        raise_on_error=False,
    )
    assert not result.success and time.monotonic() - started < 30
    message = failure_message(result)
    assert f"Cannot keep a downloaded page in the temporary folder {missing}" in message
    assert not [r for r in server.requests if r.path.endswith(".csv")]  # nothing downloaded
    assert not list((tmp_path / "lake" / "crashes").glob("*.parquet"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on return: connections to it are refused


@pytest.mark.parametrize("api", ["auto", "soda3"])
@pytest.mark.parametrize("host", ["nonexistent.invalid", "refusing"])
def test_a_host_that_cannot_be_reached_fails_in_seconds_with_one_line(
    api, host, tmp_path, caplog
) -> None:
    """No minute of retries: a name that does not resolve or a port that refuses stays so."""
    domain = host if host != "refusing" else f"http://127.0.0.1:{_closed_port()}"
    resources = {  # the default retry budget: 6 retries with backoff would take half a minute
        "socrata": SocrataResource(domain=domain, api=api, app_token="unreachable-test-token"),
        "io_manager": ParquetIOManager(storage_url=str(tmp_path)),
    }
    started = time.monotonic()
    result = dg.materialize(
        [crashes], resources=resources, partition_key="2024-01-02", raise_on_error=False
    )
    assert not result.success and time.monotonic() - started < 10
    reason = "its name does not resolve" if host != "refusing" else "it refuses connections"
    shown = domain.removeprefix("http://")
    assert (
        failure_message(result)
        .splitlines()[-1]
        .endswith(
            f"SocrataError: Socrata at {shown} cannot be reached: {reason}. "
            "Check SOCRATA_DOMAIN and the network."
        )
    )
    assert "Retrying" not in caplog.text
