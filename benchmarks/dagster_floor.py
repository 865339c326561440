"""The Dagster floor: daily-partitioned single-run assets that do nothing, one per dataset.

Materialized over the same range, on the same kind of instance and through the same CLI as the
project's assets, they leave only Dagster's own cost: loading definitions, planning the run,
launching a step per asset, and recording one materialization per asset and partition.

    dagster asset materialize -f benchmarks/dagster_floor.py \
        --select floor_crashes,floor_persons,floor_vehicles \
        --partition-range 2021-01-01...2024-12-31
"""

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.partitions import daily_partitions


def build_floor(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"floor_{dataset}",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _floor() -> None:
        """Nothing to fetch and nothing to store: a `None` output needs no IO manager."""

    return _floor


defs = dg.Definitions(assets=[build_floor(name) for name in DATASETS])
