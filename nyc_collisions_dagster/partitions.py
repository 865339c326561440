"""The two partitionings, each defined once: a crash day (raw) and a crash month (processed)."""

import dagster as dg

from nyc_collisions_dagster.constants import START_DATE, TIMEZONE

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=START_DATE, timezone=TIMEZONE, fmt="%Y-%m-%d"
)

# end_offset=1: the current month is a partition from its first day, holding the days up to
# yesterday, so the processed layer is never a month behind the raw one.
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=START_DATE[:7], timezone=TIMEZONE, fmt="%Y-%m", end_offset=1
)
