"""The daily schedule asks for yesterday's partition of all three assets, each morning."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from nyc_collisions_dagster.definitions import defs


def test_tick_targets_the_latest_complete_day_of_all_assets() -> None:
    schedule = defs.resolve_schedule_def("daily_update_schedule")
    assert schedule.execution_timezone == "America/New_York"
    tick = datetime(2024, 3, 15, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    context = dg.build_schedule_context(scheduled_execution_time=tick)
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-03-14"
    job = defs.resolve_job_def(schedule.job_name)
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
        "crashes",
        "persons",
        "vehicles",
    }
