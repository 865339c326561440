"""What the killed-run tests share: a range slow enough to kill partway, and what the lake and the
instance must hold afterwards, on a local folder or S3."""

from datetime import date, timedelta

import boto3
import dagster as dg
import pyarrow.fs as pa_fs

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster_tests.outcomes import typed_rows
from nyc_collisions_dagster_tests.soda_fake.generator import Row

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(60)]
END = DAYS[-1] + timedelta(days=1)
CRASHES_PER_DAY = (20, 40)
# Small pages, one request at a time, on a server that answers each after LATENCY seconds: the
# three datasets land day after day for 5-15 s, so a kill lands partway.
LATENCY = 0.2
SLOW = {"resources": {"socrata": {"config": {"page_size": 100, "max_workers": 1}}}}


def visible_names(storage_url: str, asset: str) -> list[str]:
    """What a reader lists in an asset's folder: every S3 object (an upload that never completed
    is no object), and on a folder every name but those Hive, Spark and pyarrow skip."""
    store = ParquetIOManager(storage_url=storage_url).store(asset)
    if store.is_local:
        folder = store.fs.get_file_info(pa_fs.FileSelector(store.root, allow_not_found=True))
        return sorted(i.base_name for i in folder if not i.base_name.startswith((".", "_")))
    bucket, prefix = store.root.split("/", 1)
    pages = (
        boto3.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=f"{prefix}/")
    )
    return sorted(o["Key"].rsplit("/", 1)[1] for page in pages for o in page.get("Contents", []))


def assert_lake_exact(
    storage_url: str, rows: dict[str, list[Row]], complete: bool = False
) -> dict[str, set[date]]:
    """Every file a reader sees is a day of DAYS holding exactly the source's rows of that day;
    `complete`: every day has its file, and no row is there twice. Returns the days with a file."""
    written = {}
    for asset, dataset in DATASETS.items():
        store = ParquetIOManager(storage_url=storage_url).store(asset)
        names = visible_names(storage_url, asset)
        days = {date.fromisoformat(name.removesuffix(".parquet")) for name in names}
        assert names == [f"{day}.parquet" for day in sorted(days)], names
        assert days <= set(DAYS), sorted(days - set(DAYS))
        keys: list[object] = []
        for day in sorted(days):
            table = store.read_one(day.isoformat())
            assert table.to_pylist() == typed_rows(asset, rows[asset], day), (asset, day)
            keys += table[dataset.unique_key].to_pylist()
        if complete:
            assert days == set(DAYS), sorted(set(DAYS) - days)
            assert len(keys) == len(set(keys)) == len(rows[asset]), asset
        written[asset] = days
    return written


def recorded(instance: dg.DagsterInstance) -> dict[str, set[date]]:
    """The days recorded as materialized, per dataset."""
    return {
        asset: {
            date.fromisoformat(key)
            for key in instance.get_materialized_partitions(dg.AssetKey(asset))
        }
        for asset in DATASETS
    }
