"""Ask the lake a question in SQL: `python -m nyc_collisions_dagster.lake "SELECT ..."`.

DuckDB sees three views, `crashes`, `persons` and `vehicles`, over the processed layer
(COLLISIONS_PROCESSED_URL), or over the raw layer (COLLISIONS_STORAGE_URL) with `--raw`, on a
local folder or on S3. Processed months are Hive folders (year=YYYY/month=MM): filters on `year`
and `month` skip the other months' files unread. `--ddl` prints the processed tables' Hive DDL
for Athena or Spark instead.
"""

import argparse
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.lake.catalog import create_table_statements
from nyc_collisions_dagster.lake.storage import PartitionStore
from nyc_collisions_dagster.processed.transforms import SCHEMAS_PROCESSED
from nyc_collisions_dagster.raw.schema import SCHEMAS
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager, ProcessedLake

# Folder names are zero-padded (month=01), which DuckDB would otherwise read as text.
_HIVE_SCHEMA = pa.schema([("year", pa.int32()), ("month", pa.int32())])
_HIVE_TYPES_SQL = "{'year': INTEGER, 'month': INTEGER}"


def _parquet_format(schema: pa.Schema) -> ds.ParquetFileFormat:
    """How pyarrow reads the lake's files on S3 for DuckDB.

    Every request costs a round trip: a file's selected column chunks are read in as few ranged
    GETs as possible (holes up to 4 MB are read through), not one GET per chunk (the lake
    benchmark counts them: docs/performance/lake.md). Text columns
    stay dictionary-encoded as Parquet stores them (DuckDB still sees VARCHAR): decoding millions
    of repeated boroughs into strings took half of a persons query's time.
    """
    return ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(dictionary_columns=_text_columns(schema)),
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(
            cache_options=pa.CacheOptions(hole_size_limit=4 << 20, range_size_limit=64 << 20)
        ),
    )


def _text_columns(schema: pa.Schema) -> set[str]:
    return {field.name for field in schema if pa.types.is_string(field.type)}


def _with_dictionaries(schema: pa.Schema) -> pa.Schema:
    text = _text_columns(schema)
    return pa.schema(
        field.with_type(pa.dictionary(pa.int32(), field.type)) if field.name in text else field
        for field in schema
    )


def _schema(layer: str, name: str) -> pa.Schema:
    return SCHEMAS[name] if layer == "raw" else SCHEMAS_PROCESSED[name]


def _setting(layer: str, url: str | None) -> ParquetIOManager | ProcessedLake:
    return ParquetIOManager(storage_url=url) if layer == "raw" else ProcessedLake(storage_url=url)


def _store(layer: str, url: str | None, name: str) -> PartitionStore:
    return _setting(layer, url).store(name)


def connect(layer: str = "processed", url: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per dataset that has files in `layer` at `url`.

    `url` defaults to the layer's setting. A local lake is read by DuckDB itself; S3 through
    pyarrow.fs, which follows the AWS credential chain and AWS_ENDPOINT_URL_S3 like the
    pipeline, and needs no DuckDB extension to be downloaded.
    """
    connection = duckdb.connect()
    hive = layer == "processed"
    for name in DATASETS:
        store = _store(layer, url, name)
        files = f"{store.root}/*/*/*.parquet" if hive else f"{store.root}/*.parquet"
        if store.is_local:
            [(found,)] = connection.execute("SELECT count(*) FROM glob(?)", [files]).fetchall()
            if found:
                options = f", hive_types = {_HIVE_TYPES_SQL}" if hive else ""
                connection.execute(
                    f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{files}'{options})"
                )
            continue
        # The schema is known: pyarrow need not read a first file's footer to infer it.
        schema = _schema(layer, name)
        read_as = _with_dictionaries(schema)
        dataset = ds.dataset(
            store.root,
            schema=pa.unify_schemas([read_as, _HIVE_SCHEMA]) if hive else read_as,
            format=_parquet_format(schema),
            filesystem=store.fs,
            partitioning=ds.partitioning(_HIVE_SCHEMA, flavor="hive") if hive else None,
        )
        if dataset.files:
            connection.register(name, dataset)
    return connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nyc_collisions_dagster.lake",
        description="Run SQL on the lake's views crashes, persons and vehicles.",
    )
    parser.add_argument(
        "query", nargs="?", help='e.g. "SELECT crash_borough, count(*) FROM crashes GROUP BY 1"'
    )
    parser.add_argument("--raw", action="store_true", help="query the raw day files instead")
    parser.add_argument("--url", help="the layer's folder or s3:// URL (default: its setting)")
    parser.add_argument("--max-rows", type=int, default=100, help="rows printed at most")
    parser.add_argument(
        "--ddl",
        action="store_true",
        help="print CREATE EXTERNAL TABLE statements of the processed layer (Athena, Spark)",
    )
    args = parser.parse_args(argv)
    if args.ddl:
        print(";\n\n".join(create_table_statements(args.url)) + ";")
        return 0
    if args.query is None:
        parser.error("a query is needed, or --ddl")
    layer = "raw" if args.raw else "processed"
    connection = connect(layer, args.url)
    try:
        connection.sql(args.query).show(max_rows=args.max_rows, max_width=200)
    except duckdb.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, duckdb.CatalogException):
            print(_missing_tables_hint(connection, layer, args.url), file=sys.stderr)
        return 1
    return 0


def _missing_tables_hint(connection: duckdb.DuckDBPyConnection, layer: str, url: str | None) -> str:
    """Which views have no files behind them, and where they were looked for."""
    found = {name for (name,) in connection.execute("SHOW TABLES").fetchall()}
    missing = [name for name in DATASETS if name not in found]
    if not missing:
        return f"the views are {', '.join(DATASETS)}"
    return (
        f"no {layer} files of {', '.join(missing)} under {_setting(layer, url).url}: "
        "materialize them first, or point --url (or the layer's setting) at the lake"
    )
