"""S3 refusing writes, through a fault-injecting proxy in front of moto: the S3 client's retries
ride out a low rate of 503 SlowDown and cut connections; a day S3 keeps refusing fails alone,
with no object a reader could see, while the range writes and records the others."""

from datetime import date

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from nyc_collisions_dagster.lake.writer import STOP_AFTER_FAILED_IN_A_ROW
from nyc_collisions_dagster.raw.assets import crashes
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.outcomes import failure_message
from nyc_collisions_dagster_tests.range_runs import DAYS, assert_lake_exact, range_rows
from nyc_collisions_dagster_tests.soda_fake.generator import Row

CRASHES = dg.AssetKey("crashes")
TEN_DAYS = DAYS[:10]
TAGS = {
    "dagster/asset_partition_range_start": str(TEN_DAYS[0]),
    "dagster/asset_partition_range_end": str(TEN_DAYS[-1]),
}


@pytest.fixture(scope="module")
def rows() -> dict[str, list[Row]]:
    return range_rows()


def _resources(server, s3_storage: str) -> dict[str, object]:
    return {
        "socrata": SocrataResource(domain=server.url),
        # Three attempts, where the default is five: a refused write fails in seconds.
        "io_manager": ParquetIOManager(storage_url=s3_storage, s3_attempts=3),
    }


def _recorded(instance: dg.DagsterInstance) -> set[date]:
    return {date.fromisoformat(key) for key in instance.get_materialized_partitions(CRASHES)}


@pytest.mark.one_transport  # the writes are under test, not the API
def test_a_low_rate_of_refused_writes_is_ridden_out_by_the_retries(
    make_soda_server, rows, s3_storage, s3_fault_proxy
) -> None:
    proxy = s3_fault_proxy
    proxy.rate = 0.3
    server = make_soda_server(rows=rows)
    done = dg.materialize([crashes], resources=_resources(server, s3_storage), tags=TAGS)
    assert done.success
    assert proxy.faults["slow_down"] and proxy.faults["reset"], proxy.faults
    assert_lake_exact(s3_storage, rows, complete=True, days=TEN_DAYS, assets=["crashes"])


@pytest.mark.one_transport
def test_a_day_s3_keeps_refusing_fails_alone_and_is_never_half_there(
    make_soda_server, rows, s3_storage, s3_fault_proxy
) -> None:
    proxy = s3_fault_proxy
    refused = TEN_DAYS[4]
    proxy.refused = (f"crashes/{refused}.parquet",)
    server = make_soda_server(rows=rows)
    resources = _resources(server, s3_storage)
    instance = dg.DagsterInstance.ephemeral()
    failed = dg.materialize(
        [crashes], resources=resources, tags=TAGS, instance=instance, raise_on_error=False
    )
    assert not failed.success
    message = failure_message(failed)
    assert f"crashes: 9 of 10 days written and materialized; not written: {refused}." in message
    assert f"Could not write {s3_storage}/crashes/{refused}.parquet" in message
    assert "SLOW_DOWN" in message
    assert proxy.faults["slow_down"] == 3  # every attempt refused
    # The others written and recorded; of the refused day, no object at all.
    written = assert_lake_exact(s3_storage, rows, days=TEN_DAYS, assets=["crashes"])["crashes"]
    assert written == _recorded(instance) == set(TEN_DAYS) - {refused}

    # S3 takes writes again: the failed partition completes the range.
    proxy.refused = ()
    again = dg.materialize(
        [crashes], resources=resources, partition_key=str(refused), instance=instance
    )
    assert again.success
    assert_lake_exact(s3_storage, rows, complete=True, days=TEN_DAYS, assets=["crashes"])
    assert _recorded(instance) == set(TEN_DAYS)


def test_a_multipart_upload_with_parts_refused_ends_whole(s3_storage, s3_fault_proxy) -> None:
    proxy = s3_fault_proxy
    # 16 MB of incompressible numbers: past the client's part size, so an upload of parts.
    numbers = np.random.default_rng(0).integers(0, 2**62, 2_000_000)
    table = pa.table({"n": numbers})
    store = ParquetIOManager(storage_url=s3_storage).store("big")
    proxy.rate = 0.3
    store.write("2024-01-01", table)
    assert proxy.faults["slow_down"] + proxy.faults["reset"], proxy.faults
    assert proxy.faults["forwarded"] >= 3, proxy.faults  # parts, not one PutObject
    assert store.read_one("2024-01-01").equals(table)


@pytest.mark.one_transport
def test_a_storage_refusing_every_write_stops_the_range_after_a_few(
    make_soda_server, rows, s3_storage, s3_fault_proxy
) -> None:
    proxy = s3_fault_proxy
    proxy.refused = ("/crashes/",)
    server = make_soda_server(rows=rows)
    sixty_days = {
        "dagster/asset_partition_range_start": str(DAYS[0]),
        "dagster/asset_partition_range_end": str(DAYS[-1]),
    }
    failed = dg.materialize(
        [crashes], resources=_resources(server, s3_storage), tags=sixty_days, raise_on_error=False
    )
    assert not failed.success
    assert f"{STOP_AFTER_FAILED_IN_A_ROW} writes failed in a row" in failure_message(failed)
    # Those and the writes already under way, not sixty days of retries.
    writes = proxy.faults["slow_down"] // 3
    assert STOP_AFTER_FAILED_IN_A_ROW <= writes < len(DAYS) // 3, proxy.faults
