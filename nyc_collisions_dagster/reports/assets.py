"""reports/dashboard: the analyst's page, rebuilt from the lake when a processed month changes."""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from nyc_collisions_dagster.constants import OWNERS, REPORTS_GROUP_NAME
from nyc_collisions_dagster.lake.storage import MonthStore
from nyc_collisions_dagster.lake.summaries import month_versions
from nyc_collisions_dagster.processed.summary import SUMMARY_SCHEMA
from nyc_collisions_dagster.processed.summary_asset import SUMMARY_KEY
from nyc_collisions_dagster.processed.tables import TABLES
from nyc_collisions_dagster.processed.transforms import SCHEMAS_PROCESSED
from nyc_collisions_dagster.reports.automation import lake_changed
from nyc_collisions_dagster.reports.figures import (
    LIST_COLUMNS,
    POINT_COLUMNS,
    dashboard_data,
    headline_table,
    map_months,
)
from nyc_collisions_dagster.resources.parquet_io import ProcessedLake
from nyc_collisions_dagster.resources.reports import ReportsLocation

DASHBOARD_KEY = dg.AssetKey(["reports", "dashboard"])
PAGE = "dashboard.html"
_READERS = 8  # months read at once: each a few requests on S3


def _read(store: MonthStore, months: Sequence[str], columns: list[str], ksi_only: bool) -> pa.Table:
    """`columns` of processed crashes in `months`, read a few at a time; only the rows with
    ksi > 0 if `ksi_only`, so that the whole history's lists never sit in memory."""

    def one(month: str) -> pa.Table:
        table = store.read_one(month, columns)
        return table.filter(pc.greater(pc.fill_null(table["ksi"], 0), 0)) if ksi_only else table

    with ThreadPoolExecutor(_READERS) as pool:
        tables = list(pool.map(one, months))
    schema = SCHEMAS_PROCESSED["crashes"]
    return (
        pa.concat_tables(tables)
        if tables
        else pa.schema([schema.field(c) for c in columns]).empty_table()
    )


@dg.asset(
    key=DASHBOARD_KEY,
    deps=[SUMMARY_KEY, TABLES["crashes"].key],
    description="One HTML page for street-safety analysts: crashes, injured and KSI by borough "
    "and month, the trend by year, KSI per 100 crashes, the top factors and vehicle classes of "
    "KSI crashes, and a map of the last 12 months' KSI crashes. Opens with no network.",
    group_name=REPORTS_GROUP_NAME,
    kinds={"html", "vega"},
    owners=OWNERS,
    automation_condition=lake_changed,
)
def dashboard(
    context: dg.AssetExecutionContext, processed_lake: ProcessedLake, reports: ReportsLocation
) -> dg.MaterializeResult:
    # Altair and Vega's bundler load only here, not with the definitions every process imports.
    from nyc_collisions_dagster.reports.page import render

    summary, _ = processed_lake.summary_store().read()
    summary = summary if summary is not None else SUMMARY_SCHEMA.empty_table()
    crashes = processed_lake.store("crashes")
    months = sorted(month_versions(crashes))
    through = max(summary["crash_date"].to_pylist(), default=None)
    recent = [m for m in map_months(through) if m in months] if through else []
    data = dashboard_data(
        summary,
        _read(crashes, recent, POINT_COLUMNS, ksi_only=True),
        _read(crashes, months, LIST_COLUMNS, ksi_only=True),
    )
    page = render(data).encode()
    uri = reports.pages().write(PAGE, page)
    context.log.info(f"dashboard: {len(page):,} bytes through {data['through']}, at {uri}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(uri),
            "bytes": len(page),
            "through": data["through"] or "",
            "months": len({row["month"] for row in data["monthly"]}),
            "ksi_crashes_mapped": len(data["ksi_crashes"]),
            "headline": dg.MetadataValue.md(headline_table(data)),
        }
    )
