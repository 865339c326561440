"""processed/summary: the summary tier, kept by Dagster beside the monthly tables."""

import dagster as dg
import pyarrow as pa

from nyc_collisions_dagster.constants import OWNERS, PROCESSED_GROUP_NAME, PROCESSED_PREFIX
from nyc_collisions_dagster.lake.summaries import month_versions
from nyc_collisions_dagster.listing import first_and_more
from nyc_collisions_dagster.metadata import table_schema
from nyc_collisions_dagster.processed.automation import processed_months_changed
from nyc_collisions_dagster.processed.summary import (
    COLUMNS_READ,
    SUMMARY_NOTES,
    SUMMARY_SCHEMA,
    rebuild,
)
from nyc_collisions_dagster.processed.tables import TABLES
from nyc_collisions_dagster.resources.parquet_io import ProcessedLake

SUMMARY_KEY = dg.AssetKey([PROCESSED_PREFIX, "summary"])


@dg.asset(
    key=SUMMARY_KEY,
    deps=[TABLES["crashes"].key],
    description="Crashes, injured, killed and KSI by crash day and crash_borough over the whole "
    "history, in one small file (summaries/summary/summary.parquet): whole-history questions "
    "in a few reads. Rebuilt from the months of processed crashes that changed.",
    group_name=PROCESSED_GROUP_NAME,
    kinds={"parquet", "duckdb"},
    owners=OWNERS,
    automation_condition=processed_months_changed,
    metadata={"dagster/column_schema": table_schema(SUMMARY_SCHEMA, SUMMARY_NOTES)},
)
def summary(
    context: dg.AssetExecutionContext, processed_lake: ProcessedLake
) -> dg.MaterializeResult:
    crashes = processed_lake.store("crashes")
    summaries = processed_lake.summary_store()
    previous, recorded = summaries.read()
    # Listed before the months are read: a month replaced meanwhile is read again next time.
    current = month_versions(crashes)

    def read_months(months: list[str]) -> pa.Table:
        return pa.concat_tables(crashes.read_one(month, COLUMNS_READ) for month in months)

    table, read = rebuild(previous, recorded, current, read_months)
    summaries.write(table, current)
    context.log.info(
        f"summary: {table.num_rows:,} rows over {len(current)} months; read "
        f"{len(read)} months of processed crashes: {first_and_more(read) if read else 'none'}"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "months": len(current),
            "months_read": len(read),
            "months_read_list": dg.MetadataValue.json(read),
            "through": str(table["crash_date"][-1]) if table.num_rows else "",
            "path": dg.MetadataValue.path(summaries.url),
        }
    )
