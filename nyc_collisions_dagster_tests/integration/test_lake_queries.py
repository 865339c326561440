"""The landed files read as one table, empty days included: one schema, every row, local and S3."""

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pa_fs
import pytest

from nyc_collisions_dagster.raw.assets import crashes
from nyc_collisions_dagster.raw.schema import SCHEMAS
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.soda_fake.generator import FIELDS, Row, generate
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(4)]

# Socrata only lands the raw days these tests start from; test_assets and test_cli read it on
# both transports.
pytestmark = pytest.mark.one_transport
EMPTY_DAY = DAYS[1]  # not the first file, which is the one pyarrow takes the schema from
DATE_AT = FIELDS["crashes"].index("crash_date")
DUCKDB_TYPES = {
    pa.date32(): "DATE",
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
}


@pytest.fixture
def source(make_soda_server: Callable[..., SodaServer]) -> tuple[SodaServer, list[Row]]:
    """A server of four days of crashes of which the second has none."""
    rows = generate(DAYS[0], DAYS[-1] + timedelta(days=1), datasets=("crashes",))["crashes"]
    rows = [row for row in rows if not str(row[DATE_AT]).startswith(EMPTY_DAY.isoformat())]
    return make_soda_server({"crashes": rows}), rows


def _land(server: SodaServer, storage_url: str) -> None:
    resources = {
        "socrata": SocrataResource(domain=server.url),
        "io_manager": ParquetIOManager(storage_url=storage_url),
    }
    tags = {
        "dagster/asset_partition_range_start": DAYS[0].isoformat(),
        "dagster/asset_partition_range_end": DAYS[-1].isoformat(),
    }
    assert dg.materialize([crashes], resources=resources, tags=tags).success


def _rows_per_day(rows: list[Row]) -> dict[date, int]:
    return dict(Counter(date.fromisoformat(str(row[DATE_AT])[:10]) for row in rows))


def _check_dataset(dataset: pads.Dataset, rows: list[Row]) -> None:
    """One file per day, each with exactly the contract's schema, and all the rows."""
    files = sorted(fragment.path.rsplit("/", 1)[-1] for fragment in dataset.get_fragments())
    assert files == [f"{day}.parquet" for day in DAYS]
    # dataset.schema is the first file's: check every file, the empty day's in particular.
    for fragment in dataset.get_fragments():
        assert fragment.physical_schema.remove_metadata() == SCHEMAS["crashes"], fragment.path
    assert dataset.schema.remove_metadata() == SCHEMAS["crashes"]
    assert dataset.count_rows() == len(rows)
    assert dataset.count_rows(filter=pads.field("crash_date") == EMPTY_DAY) == 0


def _check_duckdb(con: duckdb.DuckDBPyConnection, table: str, rows: list[Row]) -> None:
    """What an analyst sees: the contract's columns and types, every row, the right days."""
    described = con.sql(f"DESCRIBE SELECT * FROM {table}").fetchall()
    assert [(c[0], c[1]) for c in described] == [
        (field.name, DUCKDB_TYPES[field.type]) for field in SCHEMAS["crashes"]
    ]
    assert con.sql(f"SELECT count(*) FROM {table}").fetchall() == [(len(rows),)]
    per_day = con.sql(f"SELECT crash_date, count(*) FROM {table} GROUP BY crash_date").fetchall()
    assert dict(per_day) == _rows_per_day(rows)
    assert con.sql(f"SELECT count(DISTINCT collision_id) FROM {table}").fetchall() == [(len(rows),)]


def test_local_lake_reads_with_duckdb_and_pyarrow(
    source: tuple[SodaServer, list[Row]], tmp_path: Path
) -> None:
    server, rows = source
    storage = tmp_path / "collisions_raw_data"
    _land(server, str(storage))
    folder = storage / "crashes"
    _check_dataset(pads.dataset(str(folder), format="parquet"), rows)

    con = duckdb.connect()
    _check_duckdb(con, f"read_parquet('{folder}/*.parquet')", rows)
    # DuckDB reads the footer of every file, the zero-row file of the empty day included.
    footers = con.sql(
        f"SELECT count(*), sum(num_rows) FROM parquet_file_metadata('{folder}/*.parquet')"
    ).fetchall()
    assert footers == [(len(DAYS), len(rows))]


def test_s3_lake_reads_with_pyarrow_fs_and_duckdb_over_arrow(
    source: tuple[SodaServer, list[Row]], s3_storage: str, aws_env: dict[str, str]
) -> None:
    # DuckDB's own S3 reader is the httpfs extension, which DuckDB downloads on first use: it is
    # not bundled with the duckdb wheel and cannot be fetched offline. Here S3 is read with
    # pyarrow.fs alone, and DuckDB queries that Arrow dataset (pushing down columns and filters).
    server, rows = source
    _land(server, s3_storage)
    s3 = pa_fs.S3FileSystem(
        access_key=aws_env["AWS_ACCESS_KEY_ID"],
        secret_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        region=aws_env["AWS_DEFAULT_REGION"],
        endpoint_override=aws_env["AWS_ENDPOINT_URL_S3"],
    )
    dataset = pads.dataset(
        f"{s3_storage.removeprefix('s3://')}/crashes", format="parquet", filesystem=s3
    )
    _check_dataset(dataset, rows)

    con = duckdb.connect()
    con.register("crashes", dataset)
    _check_duckdb(con, "crashes", rows)
