"""The processed tables as Hive DDL, for engines that need a catalog: Athena, Spark, Trino.

Each statement declares a table's columns from the same schema the files are written with, its
`year`/`month` folders as partition columns, and Athena's partition projection, so that Athena
finds new months without a crawler or `MSCK REPAIR TABLE` and prunes by `year` and `month`.
"""

import os

import pyarrow as pa

from nyc_collisions_dagster.constants import DATASETS, START_DATE
from nyc_collisions_dagster.lake.summaries import SUMMARY
from nyc_collisions_dagster.processed.summary import SUMMARY_NOTES, SUMMARY_SCHEMA
from nyc_collisions_dagster.processed.transforms import COLUMN_NOTES, SCHEMAS_PROCESSED
from nyc_collisions_dagster.resources.parquet_io import ProcessedLake

# Projected years past the data cost Athena one empty listing each, only in queries that do not
# filter on `year`; a bound that data could outgrow would silently hide its months.
_LAST_PROJECTED_YEAR = 2099
_COMMENT_LIMIT = 256
_HIVE_TYPES = {
    pa.string(): "string",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.date32(): "date",
}


def _hive_type(arrow_type: pa.DataType) -> str:
    """The Hive type of a processed column.

    Timestamps are instants in Parquet (UTC-adjusted), which Athena and Spark read as `timestamp`;
    the `crash_hour`/`crash_minute` columns hold the New York clock.
    """
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_list(arrow_type):
        return f"array<{_hive_type(arrow_type.value_type)}>"
    return _HIVE_TYPES[arrow_type]


def create_table_statements(url: str | None = None) -> list[str]:
    """`CREATE EXTERNAL TABLE` for `crashes`, `persons` and `vehicles` at `url` (default: the
    processed layer's setting), and for `summary`, one folder with one file, unpartitioned."""
    # Only the URL: a store would resolve the bucket's region over the network.
    base = ProcessedLake(storage_url=url).url.rstrip("/")
    base = base if "://" in base else os.path.abspath(base)
    statements = []
    for name in DATASETS:
        location = f"{base}/{name}"
        notes = COLUMN_NOTES[name]
        columns = ",\n".join(
            f"  `{field.name}` {_hive_type(field.type)}" + _comment(notes.get(field.name))
            for field in SCHEMAS_PROCESSED[name]
        )
        statements.append(
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n{columns}\n)\n"
            "PARTITIONED BY (`year` int, `month` int)\n"
            "STORED AS PARQUET\n"
            f"LOCATION '{location}/'\n"
            "TBLPROPERTIES (\n"
            "  'projection.enabled' = 'true',\n"
            "  'projection.year.type' = 'integer',\n"
            f"  'projection.year.range' = '{START_DATE[:4]},{_LAST_PROJECTED_YEAR}',\n"
            "  'projection.month.type' = 'integer',\n"
            "  'projection.month.range' = '1,12',\n"
            "  'projection.month.digits' = '2',\n"
            f"  'storage.location.template' = '{location}/year=${{year}}/month=${{month}}/'\n"
            ")"
        )
    summary = ProcessedLake(storage_url=url).summary_store().folder.url
    summary = summary if "://" in summary else os.path.abspath(summary)
    columns = ",\n".join(
        f"  `{field.name}` {_hive_type(field.type)}" + _comment(SUMMARY_NOTES.get(field.name))
        for field in SUMMARY_SCHEMA
    )
    statements.append(
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {SUMMARY} (\n{columns}\n)\n"
        f"STORED AS PARQUET\nLOCATION '{summary}/'"
    )
    return statements


def hive_comment(note: str) -> str:
    """The note as the Hive metastore keeps it, 256 characters: its first sentences that fit, or
    its first 256 characters when one sentence is longer."""
    if len(note) <= _COMMENT_LIMIT:
        return note
    end = note.rfind(". ", 0, _COMMENT_LIMIT)
    return note[: end + 1] if end > 0 else note[:_COMMENT_LIMIT]


def _comment(note: str | None) -> str:
    # The notes hold no quote, which Hive and Spark escape each their own way, and no semicolon,
    # on which tools that run a script statement by statement split it.
    return "" if note is None else f" COMMENT '{hive_comment(note)}'"
