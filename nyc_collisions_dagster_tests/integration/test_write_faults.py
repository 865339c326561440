"""Faults on the write side of a folder: a full disk stops the range, naming the path and the
cause, with no partial or temporary file left and the days before it recorded; a day that cannot
be written for a cause of its own does not stop the others; a lake under a file fails at once."""

from datetime import date

import dagster as dg
import pytest

from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.assets import crashes
from nyc_collisions_dagster_tests.outcomes import failure_message, raw_resources
from nyc_collisions_dagster_tests.range_runs import DAYS, assert_lake_exact, range_rows
from nyc_collisions_dagster_tests.soda_fake.generator import Row

CRASHES = dg.AssetKey("crashes")


@pytest.fixture(scope="module")
def rows() -> dict[str, list[Row]]:
    return range_rows()


def _range(days: list[date]) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": str(days[0]),
        "dagster/asset_partition_range_end": str(days[-1]),
    }


def _recorded(instance: dg.DagsterInstance) -> set[date]:
    return {date.fromisoformat(key) for key in instance.get_materialized_partitions(CRASHES)}


@pytest.mark.one_transport  # the disk is under test, not the API
def test_a_full_disk_stops_the_range_naming_the_path_and_leaves_nothing_partial(
    make_soda_server, rows, small_disk
) -> None:
    server = make_soda_server(rows=rows)
    lake = small_disk / "collisions_raw_data"
    instance = dg.DagsterInstance.ephemeral()
    failed = dg.materialize(
        [crashes],
        resources=raw_resources(server, lake),
        tags=_range(DAYS),
        instance=instance,
        raise_on_error=False,
    )
    assert not failed.success
    message = failure_message(failed)
    assert f"Could not write {lake}/crashes/" in message
    assert "No space left on device" in message
    # Nothing partial: no temporary beside the days, and each day there is whole and exact.
    assert [p.name for p in (lake / "crashes").iterdir() if p.name.startswith(".")] == []
    written = assert_lake_exact(str(lake), rows, assets=["crashes"])["crashes"]
    assert written and written < set(DAYS)
    assert _recorded(instance) == written
    keys = [str(day) for day in DAYS]
    status = instance.get_status_by_partition(CRASHES, keys, daily_partitions)
    assert {k for k in keys if status[k] == dg.AssetPartitionStatus.FAILED} == {
        str(day) for day in set(DAYS) - written
    }


@pytest.mark.one_transport
def test_a_day_that_cannot_be_written_does_not_stop_the_others(
    make_soda_server, rows, tmp_path
) -> None:
    server = make_soda_server(rows=rows)
    lake = tmp_path / "collisions_raw_data"
    days = DAYS[:10]
    blocked = days[4]
    # A folder where the day's file goes: its write fails, and no other day's would.
    (lake / "crashes" / f"{blocked}.parquet").mkdir(parents=True)
    instance = dg.DagsterInstance.ephemeral()
    resources = raw_resources(server, lake)
    failed = dg.materialize(
        [crashes], resources=resources, tags=_range(days), instance=instance, raise_on_error=False
    )
    assert not failed.success
    message = failure_message(failed)
    assert f"crashes: 9 of 10 days written and materialized; not written: {blocked}." in message
    assert f"Could not write {lake}/crashes/{blocked}.parquet" in message
    assert _recorded(instance) == set(days) - {blocked}

    # Once the cause is gone, the failed partition completes the range.
    (lake / "crashes" / f"{blocked}.parquet").rmdir()
    again = dg.materialize(
        [crashes], resources=resources, partition_key=str(blocked), instance=instance
    )
    assert again.success
    assert _recorded(instance) == set(days)
    assert assert_lake_exact(str(lake), rows, complete=True, days=days, assets=["crashes"])


@pytest.mark.one_transport
def test_a_lake_under_a_file_fails_before_fetching_naming_the_path(
    make_soda_server, rows, tmp_path
) -> None:
    server = make_soda_server(rows=rows)
    (tmp_path / "a_file").write_text("not a folder")
    lake = tmp_path / "a_file" / "collisions_raw_data"
    failed = dg.materialize(
        [crashes],
        resources=raw_resources(server, lake),
        tags=_range(DAYS[:3]),
        raise_on_error=False,
    )
    assert not failed.success
    message = failure_message(failed)
    assert f"Cannot create {lake}/crashes" in message
    assert "Not a directory" in message
    assert not [r for r in server.requests if r.dataset_id]  # nothing fetched
