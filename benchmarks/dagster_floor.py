"""The Dagster floor: a daily-partitioned single-run asset that does nothing.

Materialized over the same range, on the same kind of instance and through the same CLI as the
project's assets, it leaves only Dagster's own cost: loading definitions, launching the step,
and recording one materialization per partition.

    dagster asset materialize -f benchmarks/dagster_floor.py --select floor \
        --partition-range 2021-01-01...2024-12-31
"""

import dagster as dg

from nyc_collisions_dagster.partitions import daily_partitions


@dg.asset(partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run())
def floor() -> None:
    """Nothing to fetch and nothing to store: a `None` output needs no IO manager."""


defs = dg.Definitions(assets=[floor])
