"""Spark reads the processed layer: by its Hive folders, with `year` and `month` as columns, and
through the DDL that `lake --ddl` prints for Athena, run in Spark's own Hive catalog, which
prunes by year and month."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from nyc_collisions_dagster.constants import DATASETS, TIMEZONE
from nyc_collisions_dagster.lake.catalog import hive_comment
from nyc_collisions_dagster.processed.assets import processed_tables
from nyc_collisions_dagster.processed.summary import SUMMARY_SCHEMA
from nyc_collisions_dagster.processed.summary_asset import summary
from nyc_collisions_dagster.processed.transforms import COLUMN_NOTES, SCHEMAS_PROCESSED
from nyc_collisions_dagster.raw.assets import collision_assets

# Socrata only lands the raw days these tests start from; test_assets and test_cli read it on
# both transports.
pytestmark = pytest.mark.one_transport
# March 2024: clocks spring forward on the 10th, and the 3rd has unreadable times.
MARCH = {
    "dagster/asset_partition_range_start": "2024-03-01",
    "dagster/asset_partition_range_end": "2024-03-31",
}
INJURED_BY_BOROUGH = (
    "SELECT borough, sum(persons_injured) AS injured FROM {table} "
    "WHERE year = 2024 AND month = 3 GROUP BY borough"
)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """A local Spark with a Hive catalog (Derby) in a temporary folder, on New York time."""
    home = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("processed-layer-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", TIMEZONE)
        .config("spark.sql.warehouse.dir", str(home / "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={home}")
        .enableHiveSupport()
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def processed(month_server, layer_resources, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """March 2024 built from its raw days, in a local folder."""
    root = tmp_path_factory.mktemp("lake")
    resources = layer_resources(month_server, root)
    assert dg.materialize(collision_assets, resources=resources, tags=MARCH).success
    assert dg.materialize([processed_tables], resources=resources, partition_key="2024-03").success
    assert dg.materialize([summary], resources=resources).success
    return root / "collisions_processed_data"


def _file(processed: Path, name: str) -> Path:
    return processed / name / "year=2024" / "month=03" / "2024-03.parquet"


def _injured_by_borough(crashes_file: Path) -> set[tuple[str | None, int]]:
    totals: dict[str | None, int] = {}
    for row in pq.read_table(crashes_file, columns=["borough", "persons_injured"]).to_pylist():
        totals[row["borough"]] = totals.get(row["borough"], 0) + row["persons_injured"]
    return set(totals.items())


def _rows(spark: SparkSession, sql: str) -> set[tuple]:
    return {tuple(row) for row in spark.sql(sql).collect()}


def test_spark_reads_the_hive_folders_with_new_york_times(spark, processed) -> None:
    crashes = spark.read.parquet(str(processed / "crashes"))
    assert crashes.schema["year"].dataType.simpleString() == "int"
    assert crashes.schema["month"].dataType.simpleString() == "int"
    crashes.createOrReplaceTempView("crashes_files")
    expected = _injured_by_borough(_file(processed, "crashes"))
    assert _rows(spark, INJURED_BY_BOROUGH.format(table="crashes_files")) == expected
    # Spark reads crash_datetime as the instant it is: on New York time its clock is the one in
    # crash_hour and crash_minute, the spring-forward day included; unreadable times stay null.
    [(rows, same_clock, unreadable)] = spark.sql(
        "SELECT count(*), count_if(hour(crash_datetime) = crash_hour "
        "AND minute(crash_datetime) = crash_minute), count_if(crash_datetime IS NULL) "
        "FROM crashes_files WHERE year = 2024 AND month = 3"
    ).collect()
    assert rows == pq.read_metadata(_file(processed, "crashes")).num_rows
    assert unreadable == 2  # "24:00" and "7:5" on March 3
    assert same_clock == rows - unreadable


@pytest.fixture
def unreadable_april(processed: Path) -> Iterator[None]:
    """A file in April that no reader can open, for as long as a test needs it: the module's
    other test reads every month."""
    stray = processed / "crashes" / "year=2024" / "month=04" / "2024-04.parquet"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"not parquet")
    yield
    stray.unlink()


@pytest.mark.usefixtures("unreadable_april")
def test_the_printed_ddl_declares_the_files_and_prunes_by_month(spark, processed) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "nyc_collisions_dagster.lake", "--ddl", "--url", str(processed)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    statements = [statement for statement in printed.split(";") if statement.strip()]
    assert len(statements) == len(DATASETS) + 1
    for statement in statements:
        spark.sql(statement)
    # The summary: its figures are the processed crashes' own.
    assert spark.table("summary").columns == SUMMARY_SCHEMA.names
    [(crashes, injured, ksi)] = spark.sql(
        "SELECT sum(crashes), sum(injured), sum(ksi) FROM summary WHERE year = 2024 AND month = 3"
    ).collect()
    march = pq.read_table(_file(processed, "crashes")).to_pydict()
    assert crashes == len(march["collision_id"])
    assert injured == sum(v or 0 for v in march["number_of_persons_injured"])
    assert ksi == sum(march["ksi"]) > 0
    for name in DATASETS:
        spark.sql(f"MSCK REPAIR TABLE {name}")
        table = spark.table(name)
        assert table.columns == [*SCHEMAS_PROCESSED[name].names, "year", "month"]
        columns = spark.catalog.listColumns(name)
        assert {c.name: c.description for c in columns if c.description} == {
            column: hive_comment(note) for column, note in COLUMN_NOTES[name].items()
        }
        # Every column, read through the declared types: a type the files do not have fails.
        [(rows,)] = spark.sql(
            f"SELECT count(*) FROM (SELECT DISTINCT * FROM {name} WHERE year = 2024 AND month = 3)"
        ).collect()
        assert rows == pq.read_metadata(_file(processed, name)).num_rows
    expected = _injured_by_borough(_file(processed, "crashes"))
    assert _rows(spark, INJURED_BY_BOROUGH.format(table="crashes")) == expected
    # A query on March never opens April's unreadable file; one on every month fails on it.
    with pytest.raises(Py4JJavaError, match="2024-04.parquet"):
        spark.sql("SELECT sum(persons_injured) FROM crashes").collect()


def test_hive_comments_keep_whole_sentences_within_the_metastores_256_characters() -> None:
    sentence = "A sentence of forty characters or so. "
    assert hive_comment(sentence * 3) == (sentence * 3)
    kept = hive_comment(sentence * 10)
    assert len(kept) <= 256 and kept.endswith("so.") and kept == (sentence * 6).rstrip()
    assert hive_comment("x" * 300) == "x" * 256
