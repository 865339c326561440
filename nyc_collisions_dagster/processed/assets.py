"""The processed layer: one analysis-ready table per dataset and crash month, from the raw days.

One step builds the selected tables month by month: each raw day file is read once however many
tables need it, and the next month is read while one is being written.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from nyc_collisions_dagster.constants import DATASETS, OWNERS, PROCESSED_GROUP_NAME
from nyc_collisions_dagster.lake.storage import swept_message
from nyc_collisions_dagster.metadata import table_schema
from nyc_collisions_dagster.partitions import daily_partitions, monthly_partitions
from nyc_collisions_dagster.processed.automation import raw_days_changed
from nyc_collisions_dagster.processed.build import month_days, read_months, require_landed
from nyc_collisions_dagster.processed.checks import MonthFigures, check_results, check_specs
from nyc_collisions_dagster.processed.tables import TABLES, columns_to_read
from nyc_collisions_dagster.processed.transforms import COLUMN_NOTES, SCHEMAS_PROCESSED, Findings
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager, ProcessedLake

# A month depends on each of its days; the current month's future days are not partitions yet.
_WHOLE_MONTH = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)


def processed_key(name: str) -> dg.AssetKey:
    return TABLES[name].key


def _spec(name: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=processed_key(name),
        deps=[
            dg.AssetDep(source, partition_mapping=_WHOLE_MONTH) for source in TABLES[name].sources
        ],
        description=f"{DATASETS[name].title}, one Parquet file per crash month in "
        f"year=YYYY/month=MM folders, sorted by crash_date and {DATASETS[name].unique_key}, "
        "with crash_datetime and its parts added.",
        group_name=PROCESSED_GROUP_NAME,
        kinds={"parquet", "duckdb"},
        owners=OWNERS,
        automation_condition=raw_days_changed,
        metadata={
            "dagster/column_schema": table_schema(SCHEMAS_PROCESSED[name], COLUMN_NOTES[name])
        },
    )


@dg.multi_asset(
    name="processed_tables",
    specs=[_spec(name) for name in DATASETS],
    check_specs=[spec for name in DATASETS for spec in check_specs(processed_key(name), name)],
    partitions_def=monthly_partitions,
    # A backfill of any range is one run, which streams month by month.
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
)
def processed_tables(
    context: dg.AssetExecutionContext,
    io_manager: dg.ResourceParam[ParquetIOManager],
    processed_lake: ProcessedLake,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    names = [name for name in DATASETS if processed_key(name) in context.selected_asset_keys]
    columns = columns_to_read(TABLES[name] for name in names)
    sources = sorted(columns)
    last_day = date.fromisoformat(daily_partitions.get_last_partition_key() or "1970-01-01")
    months = [(month, month_days(month, last_day)) for month in context.partition_keys]
    raw = {source: io_manager.store(source) for source in sources}
    require_landed(
        [day for _, days in months for day in days],
        {source: store.partition_days() for source, store in raw.items()},
    )
    stores = {name: processed_lake.store(name) for name in names}
    for store in stores.values():
        if swept := store.ensure_writable():
            context.log.info(swept_message(store, swept))
    figures: dict[str, dict[str, MonthFigures]] = {name: {} for name in names}
    for month, tables in read_months(raw, columns, months):
        for name in names:
            findings = Findings()
            table = TABLES[name].build(tables, findings)
            stores[name].write(month, table)
            figures[name][month] = _figures(
                name, table, tables[name], stores[name].row_count(month)
            )
            context.add_asset_metadata(
                _month_metadata(name, table, findings, stores[name].uri(month)),
                asset_key=processed_key(name),
                partition_key=month,
            )
        context.log.info(
            f"{month}: " + ", ".join(f"{n} {figures[n][month].rows:,} rows" for n in names)
        )
    for name in names:
        yield dg.MaterializeResult(asset_key=processed_key(name))
    selected_checks = context.selected_asset_check_keys
    for name in names:
        for result in check_results(processed_key(name), name, figures[name]):
            if dg.AssetCheckKey(processed_key(name), str(result.check_name)) in selected_checks:
                yield result


def _figures(name: str, table: pa.Table, raw: pa.Table, written: int) -> MonthFigures:
    keys = table[DATASETS[name].unique_key]
    return MonthFigures(
        raw_rows=raw.num_rows,
        rows=written,
        duplicate_keys=len(keys) - pc.count_distinct(keys).as_py(),
        without_persons=_crashes_without_persons(table) if name == "crashes" else 0,
    )


def _crashes_without_persons(crashes: pa.Table) -> int:
    return pc.sum(pc.equal(crashes["person_count"], 0)).as_py() or 0


def _month_metadata(name: str, table: pa.Table, findings: Findings, uri: str) -> dict[str, object]:
    """Numbers per month, which the UI plots month by month, the spellings no table maps, and the
    file's path."""
    totals = {"crashes": pc.count_distinct(table["collision_id"]).as_py()}
    if name == "crashes":  # the crash reports' own counts cover the whole history
        totals["persons_injured"] = pc.sum(table["number_of_persons_injured"]).as_py() or 0
        totals["persons_killed"] = pc.sum(table["number_of_persons_killed"]).as_py() or 0
        # KSI needs the persons rows, which are dense only from April 2016.
        for column in ("persons_seriously_injured", "ksi"):
            totals[column] = pc.sum(table[column]).as_py() or 0
    elif name == "persons":
        for outcome in ("Injured", "Killed"):
            rows = pc.sum(pc.equal(table["person_injury"], outcome)).as_py()
            totals[f"persons_{outcome.lower()}"] = rows or 0
        severity = table["injury_severity"]
        totals["persons_seriously_injured"] = pc.sum(pc.equal(severity, "A")).as_py() or 0
        totals["ksi"] = pc.sum(pc.is_in(severity, pa.array(["K", "A"]))).as_py() or 0
    unmapped = {
        f"unmapped_{kind}": dg.MetadataValue.json(dict(spellings.most_common()))
        for kind, spellings in sorted(findings.unmapped.items())
    }
    return {
        "dagster/row_count": table.num_rows,
        **totals,
        **dict(findings),
        **unmapped,
        "path": dg.MetadataValue.path(uri),
    }
