"""The one partitioning of every asset: a crash day, keyed YYYY-MM-DD, as New York counts days."""

import dagster as dg

from nyc_collisions_dagster.constants import START_DATE, TIMEZONE

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=START_DATE, timezone=TIMEZONE, fmt="%Y-%m-%d"
)
