"""The daily update: yesterday's partition of every dataset, each morning."""

import dagster as dg

from nyc_collisions_dagster.raw.assets import collision_assets

daily_update_job = dg.define_asset_job("daily_update_job", selection=collision_assets)

# NYC Open Data refreshes these datasets overnight; 09:00 New York time leaves an hour of slack
# after the refresh. The schedule targets the latest complete day, i.e. yesterday; records that
# arrive later for older days are the late-records sensor's job.
daily_update_schedule = dg.build_schedule_from_partitioned_job(
    daily_update_job, name="daily_update_schedule", hour_of_day=9, minute_of_hour=0
)
