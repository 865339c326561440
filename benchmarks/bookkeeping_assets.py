"""The bookkeeping benchmark's assets: `days`, the null asset that records its days as the raw
assets do (one materialization yielded from the body per day, with a row count, a path and a data
version, and no output), `days_grouped`, the same days recorded a batch at a time as the raw
assets record what their writer finished since they last looked, and `days_at_the_end`, Dagster's
batched path beside them.

    dagster asset materialize -f benchmarks/bookkeeping_assets.py --select days \
        --partition-range 2024-01-01...2024-12-31

What a run of `days` costs beyond a run of one day is Dagster's bookkeeping of the days alone.
"""

import dagster as dg

from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster_tests.recorded_days import days, days_grouped


@dg.asset(partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run())
def days_at_the_end() -> None:
    """The batched path, for comparison: one output over the range, whose days Dagster records
    after the body returns, in batches of DAGSTER_EVENT_BATCH_SIZE."""


defs = dg.Definitions(assets=[days, days_at_the_end, days_grouped])
