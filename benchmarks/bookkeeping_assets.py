"""A null asset that records its days as the raw assets do: one materialization yielded from the
body per day, with a row count, a path and a data version, and no output.

    dagster asset materialize -f benchmarks/bookkeeping_assets.py --select days \
        --partition-range 2024-01-01...2024-12-31

What a run of it costs beyond a run of one day is Dagster's bookkeeping of the days alone.
`days_at_the_end` is the batched path beside it.
"""

from collections.abc import Iterator

import dagster as dg

from nyc_collisions_dagster.partitions import daily_partitions


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    output_required=False,
)
def days(context: dg.AssetExecutionContext) -> Iterator[dg.AssetMaterialization]:
    for key in context.partition_keys:
        yield dg.AssetMaterialization(
            asset_key=context.asset_key,
            partition=key,
            metadata={"dagster/row_count": 0, "path": dg.MetadataValue.path(f"days/{key}.parquet")},
            tags={"dagster/data_version": key},
        )


@dg.asset(partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run())
def days_at_the_end() -> None:
    """The batched path, for comparison: one output over the range, whose days Dagster records
    after the body returns, in batches of DAGSTER_EVENT_BATCH_SIZE."""


defs = dg.Definitions(assets=[days, days_at_the_end])
