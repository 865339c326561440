"""The processed layer: one analysis-ready table per dataset and crash month, from the raw days.

One step builds the selected tables month by month: each raw day file is read once however many
tables need it, and the next month is read while one is being written.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS, OWNERS, PROCESSED_GROUP_NAME
from nyc_collisions_dagster.lake.storage import swept_message
from nyc_collisions_dagster.metadata import table_schema
from nyc_collisions_dagster.partitions import daily_partitions, monthly_partitions
from nyc_collisions_dagster.processed.automation import raw_days_changed
from nyc_collisions_dagster.processed.build import month_days, read_months, require_landed
from nyc_collisions_dagster.processed.checks import check_results, check_specs
from nyc_collisions_dagster.processed.tables import TABLES, columns_to_read
from nyc_collisions_dagster.processed.transforms import COLUMN_NOTES, SCHEMAS_PROCESSED, Findings
from nyc_collisions_dagster.processed.writing import MonthsWritten
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
) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization | dg.AssetCheckResult]:
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
    done = MonthsWritten(stores, context.log)
    for month, tables in read_months(raw, columns, months):
        for name in names:
            findings = Findings()
            table = TABLES[name].build(tables, findings)
            if metadata := done.write(name, month, table, tables[name], findings):
                context.add_asset_metadata(
                    metadata, asset_key=processed_key(name), partition_key=month
                )
        if done.stopped:
            break
        context.log.info(done.summary(month))
    if done.failed:
        # No output will record the months written: each is recorded on its own.
        yield from done.materializations()
        raise done.error([month for month, _ in months])
    for name in names:
        yield dg.MaterializeResult(asset_key=processed_key(name))
    selected_checks = context.selected_asset_check_keys
    for name in names:
        for result in check_results(processed_key(name), name, done.figures[name]):
            if dg.AssetCheckKey(processed_key(name), str(result.check_name)) in selected_checks:
                yield result
