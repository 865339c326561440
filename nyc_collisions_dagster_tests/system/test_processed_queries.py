"""The processed layer as users reach it: built by the CLI, queried in one command, local or S3."""

import os
import subprocess
import sys
from pathlib import Path

import boto3
import dagster as dg
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster.lake import query as lake
from nyc_collisions_dagster.processed.assets import processed_tables
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager, ProcessedLake
from nyc_collisions_dagster.resources.socrata import SocrataResource

DAGSTER = str(Path(sys.executable).with_name("dagster"))

# Socrata only lands the raw days these tests start from; test_assets and test_cli read it on
# both transports.
pytestmark = pytest.mark.one_transport
FEBRUARY = {
    "dagster/asset_partition_range_start": "2024-02-01",
    "dagster/asset_partition_range_end": "2024-02-29",
}
INJURED_BY_BOROUGH = (
    "SELECT borough, sum(persons_injured) AS injured FROM crashes "
    "WHERE year = 2024 AND month = 2 GROUP BY ALL ORDER BY borough NULLS LAST"
)


def _land_raw(server_url: str, raw_url: str) -> None:
    resources = {
        "socrata": SocrataResource(domain=server_url),
        "io_manager": ParquetIOManager(storage_url=raw_url),
    }
    assert dg.materialize(collision_assets, resources=resources, tags=FEBRUARY).success


def _expected_injured_by_borough(crashes_file) -> list[tuple[str | None, int]]:
    totals: dict[str | None, int] = {}
    for row in pq.read_table(crashes_file).to_pylist():
        totals[row["borough"]] = totals.get(row["borough"], 0) + row["persons_injured"]
    return sorted(totals.items(), key=lambda item: (item[0] is None, item[0] or ""))


def test_cli_build_and_queries_on_s3(month_server, s3_storage, tmp_path, monkeypatch) -> None:
    raw_url = s3_storage
    processed_url = raw_url.replace("collisions_raw_data", "collisions_processed_data")
    bucket, prefix = processed_url.removeprefix("s3://").split("/", 1)
    _land_raw(month_server.url, raw_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "COLLISIONS_STORAGE_URL": raw_url,
        "COLLISIONS_PROCESSED_URL": processed_url,
        "DAGSTER_HOME": str(home),
    }
    build = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nyc_collisions_dagster.definitions",
         "--select", "processed/crashes,processed/persons,processed/vehicles",
         "--partition", "2024-02"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")["Contents"]
    keys = {o["Key"].removeprefix(f"{prefix}/") for o in listed}
    names = ("crashes", "persons", "vehicles")
    assert keys == {f"{name}/year=2024/month=02/2024-02.parquet" for name in names}

    crashes_file = tmp_path / "crashes.parquet"
    s3.download_file(bucket, f"{prefix}/crashes/year=2024/month=02/2024-02.parquet", crashes_file)
    expected = _expected_injured_by_borough(crashes_file)
    monkeypatch.setenv("COLLISIONS_PROCESSED_URL", processed_url)
    assert lake.connect().sql(INJURED_BY_BOROUGH).fetchall() == expected
    printed = subprocess.run(
        [sys.executable, "-m", "nyc_collisions_dagster.lake", INJURED_BY_BOROUGH],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    for borough, injured in expected:
        assert any(
            str(borough or "NULL") in line and str(injured) in line
            for line in printed.stdout.splitlines()
        ), printed.stdout


def test_local_queries_prune_by_year_and_month_and_join_the_tables(month_server, tmp_path) -> None:
    raw_url, processed_url = str(tmp_path / "raw"), str(tmp_path / "processed")
    _land_raw(month_server.url, raw_url)
    resources = {
        "io_manager": ParquetIOManager(storage_url=raw_url),
        "processed_lake": ProcessedLake(storage_url=processed_url),
    }
    assert dg.materialize([processed_tables], resources=resources, partition_key="2024-02").success
    # A foreign, unreadable file in another month: a query that prunes by month never opens it.
    stray = tmp_path / "processed" / "crashes" / "year=2024" / "month=03"
    stray.mkdir(parents=True)
    (stray / "2024-03.parquet").write_bytes(b"not parquet")
    connection = lake.connect(url=processed_url)
    crashes_file = tmp_path / "processed" / "crashes" / "year=2024" / "month=02" / "2024-02.parquet"
    assert connection.sql(INJURED_BY_BOROUGH).fetchall() == _expected_injured_by_borough(
        crashes_file
    )
    with pytest.raises(Exception, match="2024-03.parquet"):
        connection.sql("SELECT count(*) FROM crashes").fetchall()
    [(people, linked)] = connection.sql(
        "SELECT count(*), count(c.collision_id) FROM persons p LEFT JOIN crashes c "
        "ON c.collision_id = p.collision_id AND c.month = 2 WHERE p.month = 2"
    ).fetchall()
    assert (
        people
        == pq.read_metadata(
            tmp_path / "processed" / "persons" / "year=2024" / "month=02" / "2024-02.parquet"
        ).num_rows
    )
    assert linked == people  # the generator links every person to a crash of the same day


def test_a_query_on_a_layer_without_files_says_where_it_looked(tmp_path, capsys) -> None:
    empty = tmp_path / "processed"
    assert lake.main(["SELECT count(*) FROM crashes", "--url", str(empty)]) == 2
    [error] = capsys.readouterr().err.splitlines()
    assert error == (
        f"crashes has no processed files under {empty}: materialize it first, or point --url "
        "at the lake."
    )


def test_a_wrong_query_is_one_line(tmp_path, capsys) -> None:
    assert lake.main(["SELEC 1", "--url", str(tmp_path)]) == 2
    [error] = capsys.readouterr().err.splitlines()
    assert error == 'error: Parser Error: syntax error at or near "SELEC"'


def test_a_missing_bucket_is_one_line(aws_env) -> None:
    """As a user types it, with the setting in the environment."""
    env = {**os.environ, "COLLISIONS_PROCESSED_URL": "s3://no-such-bucket/collisions_processed"}
    done = subprocess.run(
        [sys.executable, "-m", "nyc_collisions_dagster.lake", "SELECT count(*) FROM crashes"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    endpoint = aws_env["AWS_ENDPOINT_URL_S3"]
    assert done.stderr.splitlines() == [
        f"S3 bucket 'no-such-bucket' does not exist at {endpoint}. Check COLLISIONS_PROCESSED_URL."
    ]
