"""The project's only Definitions: assets with their checks, schedule, sensors and resources."""

import dagster as dg

from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.raw.reconciliation import lake_matches_source
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster.raw.schedules import daily_update_job, daily_update_schedule
from nyc_collisions_dagster.raw.reconciliation_sensor import reconciliation_sensor
from nyc_collisions_dagster.raw.sensors import late_records_sensor

defs = dg.Definitions(
    assets=collision_assets,
    asset_checks=[lake_matches_source],
    jobs=[daily_update_job],
    schedules=[daily_update_schedule],
    sensors=[late_records_sensor, reconciliation_sensor],
    resources={"socrata": SocrataResource(), "io_manager": ParquetIOManager()},
)
