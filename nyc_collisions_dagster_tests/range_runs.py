"""What the tests of killed and overlapping range runs share: a range slow enough to kill or
overlap partway, started as a shell starts it, and what the lake and the instance must hold
during and after, on a local folder or S3."""

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pyarrow.fs as pa_fs
import pytest

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster_tests.outcomes import typed_rows
from nyc_collisions_dagster_tests.soda_fake.generator import FIELDS, Row, generate

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(60)]
END = DAYS[-1] + timedelta(days=1)
CRASHES_PER_DAY = (20, 40)
# Small pages, one request at a time, on a server that answers each after LATENCY seconds: the
# three datasets land day after day for 5-15 s, so a kill lands partway.
LATENCY = 0.2
SLOW = {"resources": {"socrata": {"config": {"page_size": 100, "max_workers": 1}}}}
# Between a reader's passes over the lake: an analyst's queries, not a loop taking a core.
_READER_PAUSE_SECONDS = 1.0


def range_rows() -> dict[str, list[Row]]:
    """The three datasets' rows of DAYS."""
    return generate(DAYS[0], END, crashes_per_day=CRASHES_PER_DAY)


def shell_settings(folder: Path, socrata: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A user's shell, as `make` sets it: DAGSTER_HOME with the sample instance config (set in
    this process too, where the pooled event log finds its files), the lake in a folder under
    `folder` and Socrata at `socrata`."""
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    lake = str(folder / "collisions_raw_data")
    return {**os.environ, "COLLISIONS_STORAGE_URL": lake, "SOCRATA_DOMAIN": socrata}


def materialize(
    env: dict[str, str],
    days: Sequence[date] = DAYS,
    config: dict | None = None,
    assets: Sequence[str] = tuple(DATASETS),
) -> subprocess.Popen[str]:
    """`dagster asset materialize` of `assets` over `days`, in its own process group as a shell
    runs it, so that a kill takes its step processes too."""
    command = [DAGSTER, "asset", "materialize", "-m", "nyc_collisions_dagster.definitions"]
    command += ["--select", ",".join(assets)]
    command += ["--partition-range", f"{days[0]}...{days[-1]}"]
    command += ["--config-json", json.dumps(config)] if config else []
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


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
    storage_url: str,
    rows: dict[str, list[Row]],
    complete: bool = False,
    days: Sequence[date] = DAYS,
    assets: Sequence[str] = tuple(DATASETS),
) -> dict[str, set[date]]:
    """Every file of `assets` a reader sees is one of `days` holding exactly the source's rows of
    that day; `complete`: every day has its file, and no row is there twice. Returns the days
    with a file."""
    written = {}
    for asset in assets:
        dataset = DATASETS[asset]
        store = ParquetIOManager(storage_url=storage_url).store(asset)
        names = visible_names(storage_url, asset)
        found = sorted(date.fromisoformat(name.removesuffix(".parquet")) for name in names)
        assert names == [f"{day}.parquet" for day in found], names
        assert set(found) <= set(days), sorted(set(found) - set(days))
        source = _rows_by_day(asset, rows[asset])
        # Read as a reader would, a few files at once: S3 answers each in tens of milliseconds.
        with ThreadPoolExecutor(8) as pool:
            tables = pool.map(store.read_one, [day.isoformat() for day in found])
            keys: list[object] = []
            for day, table in zip(found, tables):
                expected = typed_rows(asset, source.get(day, []), day)
                assert table.to_pylist() == expected, (asset, day)
                keys += table[dataset.unique_key].to_pylist()
        if complete:
            assert set(found) == set(days), sorted(set(days) - set(found))
            expected_rows = sum(len(source.get(day, [])) for day in days)
            assert len(keys) == len(set(keys)) == expected_rows, asset
        written[asset] = set(found)
    return written


def _rows_by_day(asset: str, rows: list[Row]) -> dict[date, list[Row]]:
    at = FIELDS[asset].index("crash_date")
    by_day: dict[date, list[Row]] = {}
    for row in rows:
        by_day.setdefault(date.fromisoformat(str(row[at])[:10]), []).append(row)
    return by_day


class LakeReader(threading.Thread):
    """Reads every file a reader sees, again and again until stopped, as an analyst's query
    would while runs write: each must hold exactly the source's rows of its day."""

    def __init__(
        self,
        storage_url: str,
        rows: dict[str, list[Row]],
        days: Sequence[date],
        assets: Sequence[str] = tuple(DATASETS),
    ) -> None:
        super().__init__(daemon=True)
        self.storage_url, self.rows, self.days, self.assets = storage_url, rows, days, assets
        self.stopped = threading.Event()
        self.files_read, self.passes = 0, 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                written = assert_lake_exact(
                    self.storage_url, self.rows, days=self.days, assets=self.assets
                )
            except BaseException as failure:  # noqa: BLE001 - reported by stop()
                self.failure = failure
                return
            self.files_read += sum(map(len, written.values()))
            self.passes += 1
            self.stopped.wait(_READER_PAUSE_SECONDS)

    def stop(self) -> None:
        """Stop reading; raise what a read found wrong."""
        self.stopped.set()
        self.join(timeout=60)
        if self.failure is not None:
            raise self.failure


def recorded(instance: dg.DagsterInstance) -> dict[str, set[date]]:
    """The days recorded as materialized, per dataset."""
    return {
        asset: {
            date.fromisoformat(key)
            for key in instance.get_materialized_partitions(dg.AssetKey(asset))
        }
        for asset in DATASETS
    }
