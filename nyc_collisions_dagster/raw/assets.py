"""The three collision datasets as daily-partitioned assets, one factory over DATASETS."""

from collections.abc import Iterator

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS, OWNERS, POOL, RAW_GROUP_NAME, Dataset
from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.checks import check_results, check_specs
from nyc_collisions_dagster.raw.fetching import DayStream
from nyc_collisions_dagster.raw.schema import column_schema
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource


def build_collision_asset(dataset: Dataset) -> dg.AssetsDefinition:
    @dg.asset(
        name=dataset.asset,
        description=(
            f"[{dataset.title}]({dataset.url}) (Socrata `{dataset.dataset_id}`), one Parquet "
            f"file per crash day. Partition D holds every row whose crash_date is D, "
            f"sorted by {dataset.unique_key}."
        ),
        partitions_def=daily_partitions,
        # One run fetches a whole range with range queries: the CLI's --partition-range needs it.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=RAW_GROUP_NAME,
        kinds={"socrata", "parquet", "s3"},
        owners=OWNERS,
        pool=POOL,
        metadata={"dagster/column_schema": column_schema(dataset.asset)},
        check_specs=check_specs(dataset),
    )
    def _asset(
        context: dg.AssetExecutionContext,
        socrata: SocrataResource,
        io_manager: dg.ResourceParam[ParquetIOManager],
    ) -> Iterator[dg.Output[DayStream] | dg.AssetCheckResult]:
        window = context.partition_time_window
        stream = DayStream(
            socrata.get_client(context.log),
            dataset,
            window.start.date(),
            window.end.date(),
            context.log,
        )
        yield dg.Output(stream)  # the IO manager writes every day before this generator resumes
        crashes = io_manager.store("crashes") if dataset.asset != "crashes" else None
        yield from check_results(
            stream.report,
            lambda day: crashes.read_column(day.isoformat(), "collision_id") if crashes else None,
        )

    return _asset


crashes, persons, vehicles = (build_collision_asset(d) for d in DATASETS.values())
collision_assets = [crashes, persons, vehicles]
