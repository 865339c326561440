"""The project's only Definitions: both layers, the reports, their checks, schedule, sensors,
automation and resources."""

import dagster as dg

from nyc_collisions_dagster.processed.assets import processed_tables
from nyc_collisions_dagster.processed.automation import processed_automation_sensor
from nyc_collisions_dagster.processed.summary_asset import summary
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.raw.reconciliation_sensor import reconciliation_sensor
from nyc_collisions_dagster.raw.schedules import daily_update_job, daily_update_schedule
from nyc_collisions_dagster.raw.sensors import late_records_sensor
from nyc_collisions_dagster.reports.assets import dashboard
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager, ProcessedLake
from nyc_collisions_dagster.resources.reports import ReportsLocation
from nyc_collisions_dagster.resources.socrata import SocrataResource

defs = dg.Definitions(
    assets=[*collision_assets, processed_tables, summary, dashboard],
    jobs=[daily_update_job],
    schedules=[daily_update_schedule],
    sensors=[late_records_sensor, reconciliation_sensor, processed_automation_sensor],
    resources={
        "socrata": SocrataResource(),
        "io_manager": ParquetIOManager(),
        "processed_lake": ProcessedLake(),
        "reports": ReportsLocation(),
    },
)
