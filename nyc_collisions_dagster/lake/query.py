"""Ask the lake a question in SQL: `python -m nyc_collisions_dagster.lake "SELECT ..."`.

DuckDB sees the views `crashes`, `persons` and `vehicles` over the processed layer
(COLLISIONS_PROCESSED_URL), with `summary` (the summary tier: whole-history figures by day and
borough in one file), or over the raw layer (COLLISIONS_STORAGE_URL) with `--raw`, on a local
folder or on S3. Processed months are Hive folders (year=YYYY/month=MM): filters on `year` and
`month` skip the other months' files unread. `--ddl` prints the processed tables' Hive DDL for
Athena or Spark instead.
"""

import argparse
import functools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pa_fs

from nyc_collisions_dagster.constants import DATASETS, PROCESSED_URL_ENV, STORAGE_URL_ENV
from nyc_collisions_dagster.lake.catalog import create_table_statements
from nyc_collisions_dagster.lake.storage import PartitionStore, StorageError
from nyc_collisions_dagster.lake.summaries import SUMMARY
from nyc_collisions_dagster.processed.summary import SUMMARY_SCHEMA
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


def _setting_name(layer: str, url: str | None) -> str:
    """What a user changes to point the command at another lake."""
    return "--url" if url else STORAGE_URL_ENV if layer == "raw" else PROCESSED_URL_ENV


@dataclass(frozen=True)
class _View:
    """A view the command opens: its files' folder, their schema, and whether they are in Hive
    year=/month= folders."""

    name: str
    store: PartitionStore
    schema: pa.Schema
    hive: bool
    file: str | None = None  # the partition key of the one file it reads, if one

    def source(self) -> str | list[str] | None:
        """What pyarrow reads on S3: the folder, listed; or the one file, found by a HEAD rather
        than listings. None when that file does not exist."""
        if self.file is None:
            return self.store.root
        path = self.store.path(self.file)
        found = self.store.fs.get_file_info(path).type != pa_fs.FileType.NotFound
        return [path] if found else None


def _views_of(layer: str, url: str | None, wanted: set[str]) -> list[_View]:
    """The views named in `wanted`: only their stores are built (each an S3 client on S3)."""
    lake = _setting(layer, url)
    setting = _setting_name(layer, url)
    views = []
    for name in DATASETS:
        if name in wanted:
            store = lake.store(name)
            store.setting = setting
            views.append(_View(name, store, _schema(layer, name), hive=layer == "processed"))
    if isinstance(lake, ProcessedLake) and SUMMARY in wanted:
        folder = lake.summary_store().folder
        folder.setting = setting
        views.append(_View(SUMMARY, folder, SUMMARY_SCHEMA, hive=False, file=SUMMARY))
    return views


@functools.cache
def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process, made at the first question. Opening a database costs
    about 25 ms (its built-in extensions register their functions), more than a question of the
    summary takes; each `connect` is a cursor of this one, with views of its own."""
    return duckdb.connect()


def view_names(layer: str) -> list[str]:
    return [*DATASETS, SUMMARY] if layer == "processed" else list(DATASETS)


def views_in(sql: str, layer: str = "processed") -> list[str]:
    """The layer's views that a query reads (after FROM, JOIN or a comma): the only ones worth
    listing on S3. A column of the same name, as in `sum(crashes)`, is not one."""
    return [
        name
        for name in view_names(layer)
        if re.search(rf"(\bfrom|\bjoin|,)\s*{name}\b", sql, re.IGNORECASE)
    ]


def connect(
    layer: str = "processed", url: str | None = None, only: Iterable[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per table that has files in `layer` at `url`: the
    datasets, and the processed layer's summary; only the views named in `only`, if given.

    `url` defaults to the layer's setting. A local lake is read by DuckDB itself; S3 through
    pyarrow.fs, which follows the AWS credential chain and AWS_ENDPOINT_URL_S3 like the
    pipeline, and needs no DuckDB extension to be downloaded. Each view lists its folder, one
    request or more on S3: a question of the summary alone need not list the monthly tables.
    """
    connection = _database().cursor()
    views = _views_of(layer, url, set(view_names(layer) if only is None else only))
    opened = 0
    for view in views:
        store = view.store
        files = f"{store.root}/*/*/*.parquet" if view.hive else f"{store.root}/*.parquet"
        if store.is_local:
            [(found,)] = connection.execute("SELECT count(*) FROM glob(?)", [files]).fetchall()
            if found:
                options = f", hive_types = {_HIVE_TYPES_SQL}" if view.hive else ""
                read = f"read_parquet('{files}'{options})"
                connection.execute(f"CREATE TEMP VIEW {view.name} AS SELECT * FROM {read}")
            continue
        # The schema is known: pyarrow need not read a first file's footer to infer it.
        read_as = _with_dictionaries(view.schema)
        try:
            source = view.source()
            if source is None:
                continue
            dataset = ds.dataset(
                source,
                schema=pa.unify_schemas([read_as, _HIVE_SCHEMA]) if view.hive else read_as,
                format=_parquet_format(view.schema),
                filesystem=store.fs,
                partitioning=ds.partitioning(_HIVE_SCHEMA, flavor="hive") if view.hive else None,
            )
        except FileNotFoundError:
            continue  # no file was ever written there: no view, as for a local folder
        except OSError as exc:
            store.ensure_bucket()  # the likeliest cause, said plainly
            raise StorageError(f"Could not list {store.url}: {exc}") from None
        if dataset.files:
            connection.register(view.name, dataset)
            opened += 1
    if views and not views[0].store.is_local and not opened:
        # Nothing listed: a missing bucket lists as empty, and deserves its own words.
        views[0].store.ensure_bucket()
    return connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nyc_collisions_dagster.lake",
        description="Run SQL on the lake's views crashes, persons, vehicles and summary.",
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
    try:
        connection = connect(layer, args.url, views_in(args.query, layer))
    except (StorageError, duckdb.Error) as exc:
        return _fail(_first_line(exc))
    try:
        connection.sql(args.query).show(max_rows=args.max_rows, max_width=200)
    except duckdb.Error as exc:
        missing = _missing_table(exc, connection, view_names(layer))
        if missing is None:
            return _fail(f"error: {_first_line(exc)}")
        return _fail(
            f"{missing} has no {layer} files under {_setting(layer, args.url).url}: materialize "
            f"it first, or point {_setting_name(layer, args.url)} at the lake."
        )
    return 0


def _fail(line: str) -> int:
    """One line on stderr and exit status 2, as the make targets' commands fail."""
    print(line, file=sys.stderr)
    return 2


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _views(connection: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in connection.execute("SHOW TABLES").fetchall()}


def _missing_table(
    exc: duckdb.Error, connection: duckdb.DuckDBPyConnection, names: list[str]
) -> str | None:
    """The view the query names that has no files behind it, if that is what failed."""
    if not isinstance(exc, duckdb.CatalogException):
        return None
    found = _views(connection)
    named = [name for name in names if name not in found and f"name {name} " in str(exc)]
    return named[0] if named else None
