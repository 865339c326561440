"""The three assets land exactly the source rows of each day, typed, one file per day."""

from datetime import date, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.assets import collision_assets, crashes
from nyc_collisions_dagster.raw.schema import SCHEMAS
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.outcomes import file_rows, typed_rows
from nyc_collisions_dagster_tests.soda_fake.generator import (
    crash_date,
    drop_field,
    generate,
    to_api_dict,
)

FIRST = date(2024, 1, 1)


def _range_tags(start: str, end: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start,
        "dagster/asset_partition_range_end": end,
    }


def _days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


@pytest.mark.parametrize("asset", collision_assets, ids=lambda a: a.key.to_user_string())
def test_one_partition_matches_the_source(asset, resources, local_storage, soda_rows) -> None:
    result = dg.materialize([asset], partition_key="2024-01-03", resources=resources)
    assert result.success
    name = asset.key.to_user_string()
    path = Path(local_storage) / name / "2024-01-03.parquet"
    expected = typed_rows(name, soda_rows[name], date(2024, 1, 3))
    assert len(expected) > 100
    assert file_rows(str(path)) == expected
    assert pq.read_schema(path).remove_metadata() == SCHEMAS[name]
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dagster/row_count"].value == len(expected)
    assert metadata["path"].value == str(path)
    assert metadata["requests"].value == 2  # the day's count and its one page
    assert "dagster/column_schema" in metadata


def test_range_run_writes_every_day_from_range_queries(
    make_soda_server, local_storage, soda_rows
) -> None:
    server = make_soda_server()
    resources = {
        "socrata": SocrataResource(domain=server.url),
        "io_manager": ParquetIOManager(storage_url=local_storage),
    }
    result = dg.materialize(
        collision_assets, resources=resources, tags=_range_tags("2024-01-01", "2024-01-05")
    )
    assert result.success
    for name in ("crashes", "persons", "vehicles"):
        for day in _days(FIRST, 5):
            path = Path(local_storage) / name / f"{day}.parquet"
            assert file_rows(str(path)) == typed_rows(name, soda_rows[name], day)
        assert not (Path(local_storage) / name / "2024-01-06.parquet").exists()
    data_requests = [r for r in server.requests if r.path.endswith(".csv")]
    # One page per dataset covers five days: no query per day, no offset, a unique order.
    assert len(data_requests) == 3
    for request in data_requests:
        assert "$offset" not in request.clauses
        assert request.clauses["$limit"] == "50000"
        assert request.clauses["$order"] in ("crash_date, collision_id", "crash_date, unique_id")
        assert "crash_date >= '2024-01-01T00:00:00'" in request.clauses["$where"]
        assert "crash_date < '2024-01-06T00:00:00'" in request.clauses["$where"]
    events = result.get_asset_materialization_events()
    assert len(events) == 15
    counts = {
        (e.asset_key.to_user_string(), e.partition): e.materialization.metadata[
            "dagster/row_count"
        ].value
        for e in events
    }
    assert counts[("persons", "2024-01-02")] == len(
        typed_rows("persons", soda_rows["persons"], date(2024, 1, 2))
    )


@pytest.mark.parametrize("page_size, max_workers", [(97, 1), (97, 4), (50_000, 1)])
def test_paging_and_concurrency_do_not_change_the_files(
    soda_server, tmp_path, soda_rows, page_size, max_workers
) -> None:
    storage = str(tmp_path / "lake")
    resources = {
        "socrata": SocrataResource(
            domain=soda_server.url, page_size=page_size, max_workers=max_workers
        ),
        "io_manager": ParquetIOManager(storage_url=storage),
    }
    assert dg.materialize(
        [crashes], resources=resources, tags=_range_tags("2024-01-01", "2024-01-04")
    ).success
    for day in _days(FIRST, 4):
        assert file_rows(f"{storage}/crashes/{day}.parquet") == typed_rows(
            "crashes", soda_rows["crashes"], day
        )


def test_empty_day_and_all_null_column(make_soda_server, tmp_path) -> None:
    rows = generate(FIRST, date(2024, 1, 4), datasets=("crashes",))["crashes"]
    day2 = [r for r in rows if crash_date("crashes", r).startswith("2024-01-02")]
    day3 = drop_field(
        "crashes", [r for r in rows if crash_date("crashes", r).startswith("2024-01-03")], "borough"
    )
    server = make_soda_server({"crashes": day2 + day3})  # 2024-01-01 has no rows at all
    storage = tmp_path / "lake"
    resources = {
        "socrata": SocrataResource(domain=server.url),
        "io_manager": ParquetIOManager(storage_url=str(storage)),
    }
    assert dg.materialize(
        [crashes], resources=resources, tags=_range_tags("2024-01-01", "2024-01-03")
    ).success
    empty = pq.read_table(storage / "crashes" / "2024-01-01.parquet")
    assert empty.num_rows == 0
    assert empty.schema.remove_metadata() == SCHEMAS["crashes"]
    quiet = pq.read_table(storage / "crashes" / "2024-01-03.parquet")
    assert quiet.num_rows == len(day3) > 0
    assert quiet.schema.remove_metadata() == SCHEMAS["crashes"]
    assert quiet.column("borough").null_count == quiet.num_rows
    assert file_rows(str(storage / "crashes" / "2024-01-03.parquet")) == typed_rows(
        "crashes", day3, date(2024, 1, 3)
    )


def test_rerun_replaces_the_file(make_soda_server, tmp_path) -> None:
    rows = generate(FIRST, date(2024, 1, 2), datasets=("crashes",))["crashes"]
    server = make_soda_server({"crashes": rows})
    storage = tmp_path / "lake"
    resources = {
        "socrata": SocrataResource(domain=server.url),
        "io_manager": ParquetIOManager(storage_url=str(storage)),
    }
    assert dg.materialize([crashes], partition_key="2024-01-01", resources=resources).success
    first = file_rows(str(storage / "crashes" / "2024-01-01.parquet"))
    amended = to_api_dict("crashes", rows[0]) | {
        "borough": "STATEN ISLAND",
        "number_of_persons_injured": "7",
    }
    server.upsert("crashes", [amended])
    assert dg.materialize([crashes], partition_key="2024-01-01", resources=resources).success
    second = file_rows(str(storage / "crashes" / "2024-01-01.parquet"))
    assert len(second) == len(first)
    [changed] = [r for r in second if r["collision_id"] == int(amended["collision_id"])]
    assert changed["borough"] == "STATEN ISLAND"
    assert changed["number_of_persons_injured"] == 7
    assert [p.name for p in (storage / "crashes").iterdir()] == ["2024-01-01.parquet"]


def test_s3_storage_holds_the_same_files(soda_server, s3_storage, soda_rows) -> None:
    resources = {
        "socrata": SocrataResource(domain=soda_server.url),
        "io_manager": ParquetIOManager(storage_url=s3_storage),
    }
    assert dg.materialize(
        collision_assets, resources=resources, tags=_range_tags("2024-01-02", "2024-01-03")
    ).success
    s3 = boto3.client("s3")
    bucket, prefix = s3_storage.removeprefix("s3://").split("/", 1)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    assert keys == sorted(
        f"{prefix}/{name}/{day}.parquet"
        for name in ("crashes", "persons", "vehicles")
        for day in ("2024-01-02", "2024-01-03")
    )
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/vehicles/2024-01-03.parquet")["Body"].read()
    table = pq.read_table(pa.BufferReader(body))
    assert table.to_pylist() == typed_rows("vehicles", soda_rows["vehicles"], date(2024, 1, 3))


def test_downstream_assets_load_partitions_as_a_dataframe(resources, soda_rows) -> None:
    @dg.asset(partitions_def=daily_partitions)
    def injured_by_borough(crashes: pd.DataFrame) -> None:
        assert len(crashes) == len(typed_rows("crashes", soda_rows["crashes"], date(2024, 1, 4)))
        assert str(crashes["collision_id"].dtype) == "int64"

    assert dg.materialize([crashes], partition_key="2024-01-04", resources=resources).success
    result = dg.materialize(
        [crashes, injured_by_borough],
        partition_key="2024-01-04",
        resources=resources,
        selection=[injured_by_borough],
    )
    assert result.success


def test_range_run_metadata_shows_days_preview_and_fetch_figures(resources) -> None:
    result = dg.materialize(
        [crashes], resources=resources, tags=_range_tags("2024-01-02", "2024-01-04")
    )
    events = {
        e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    last = events["2024-01-04"]
    by_day = {r.data["partition"]: r.data["rows"] for r in last["run_rows_by_day"].records}
    assert by_day == {k: events[k]["dagster/row_count"].value for k in events}
    assert "run_rows_by_day" not in events["2024-01-02"]
    assert last["preview"].value.startswith("| crash_date | crash_time |")
    assert last["run_rows"].value == sum(by_day.values())
    for name in (
        "requests",
        "retries",
        "bytes_received",
        "rows_per_second",
        "dagster/column_schema",
    ):
        assert name in last
