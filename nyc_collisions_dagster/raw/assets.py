"""The three collision datasets as daily-partitioned assets, one factory over DATASETS."""

from collections.abc import Iterator

import dagster as dg
from dagster._core.events import DagsterEvent

from nyc_collisions_dagster.constants import DATASETS, OWNERS, POOL, RAW_GROUP_NAME, Dataset
from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.checks import check_results, check_specs
from nyc_collisions_dagster.raw.landing import land
from nyc_collisions_dagster.raw.reconciliation import (
    LAKE_MATCHES_SOURCE,
    checked_alone,
    lake_check_spec,
    landed_result,
)
from nyc_collisions_dagster.raw.schema import column_schema
from nyc_collisions_dagster.raw.stream import DayStream
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource


def build_collision_asset(dataset: Dataset) -> dg.AssetsDefinition:
    key = dg.AssetKey(dataset.asset)

    @dg.multi_asset(
        name=dataset.asset,
        specs=[
            dg.AssetSpec(
                key,
                description=(
                    f"[{dataset.title}]({dataset.url}) (Socrata `{dataset.dataset_id}`), one "
                    f"Parquet file per crash day. Partition D holds every row whose crash_date "
                    f"is D, sorted by {dataset.unique_key}."
                ),
                group_name=RAW_GROUP_NAME,
                kinds={"socrata", "parquet", "s3"},
                owners=OWNERS,
                metadata={"dagster/column_schema": column_schema(dataset.asset)},
                # The body records each day's materialization itself, as its file is written
                # (see landing.py); an output would make Dagster record them all again at the end.
                skippable=True,
            )
        ],
        partitions_def=daily_partitions,
        # One run fetches a whole range with range queries: the CLI's --partition-range needs it.
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POOL,
        check_specs=[*check_specs(dataset), lake_check_spec(dataset)],
        # The lake check also runs without the asset (the UI's Execute), over the whole history;
        # with it, it is evaluated in this step, not in a step (a process) of its own.
        can_subset=True,
    )
    def _asset(
        context: dg.AssetExecutionContext,
        socrata: SocrataResource,
        io_manager: dg.ResourceParam[ParquetIOManager],
    ) -> Iterator[dg.AssetMaterialization | DagsterEvent | dg.AssetCheckResult]:
        selected = {check.name for check in context.selected_asset_check_keys}
        if key not in context.selected_asset_keys:
            yield from _checks_alone(context, socrata, dataset, selected)
            return
        window = context.partition_time_window
        stream = DayStream(
            socrata.get_client(context.log),
            dataset,
            window.start.date(),
            window.end.date(),
            context.log,
        )
        store = io_manager.store(dataset.asset)
        yield from land(context, stream, store, io_manager.max_concurrent_writes)
        crashes = io_manager.store("crashes") if dataset.asset != "crashes" else None
        yield from check_results(
            stream.report,
            lambda day: crashes.read_column(day.isoformat(), "collision_id") if crashes else None,
            selected,
        )
        if LAKE_MATCHES_SOURCE in selected:
            yield landed_result(stream.report)

    return _asset


def _checks_alone(
    context: dg.AssetExecutionContext,
    socrata: SocrataResource,
    dataset: Dataset,
    selected: set[str],
) -> Iterator[dg.AssetCheckResult]:
    """Checks selected without their asset: the lake check; the others need the rows fetched."""
    if fetched := sorted(selected - {LAKE_MATCHES_SOURCE}):
        context.log.warning(
            f"{dataset.asset}: {', '.join(fetched)} skipped: they check the rows a run fetches, "
            f"so they are evaluated when {dataset.asset} is materialized. {LAKE_MATCHES_SOURCE} "
            "is the check that runs on its own."
        )
    if LAKE_MATCHES_SOURCE in selected:
        yield checked_alone(context, socrata, dataset)


crashes, persons, vehicles = (build_collision_asset(d) for d in DATASETS.values())
collision_assets = [crashes, persons, vehicles]
