"""The dashboard's part of the lake benchmark: its step's own time, and its page's size at the
whole history's length."""

from pathlib import Path

import dagster as dg
import pyarrow as pa

from nyc_collisions_dagster.reports.figures import monthly
from nyc_collisions_dagster.reports.page import render
from nyc_collisions_dagster_tests.outcomes import dashboard_page_data

DASHBOARD_SELECT = "reports/dashboard"
STEP = "reports__dashboard"


def step_seconds(dagster_home: Path) -> float | None:
    """How long the dashboard's step took in the one run of an instance: the build itself,
    without the command's start-up."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs(limit=1):
            for stats in instance.get_run_step_stats(run.run_id):
                if stats.step_key == STEP and stats.end_time and stats.start_time:
                    return stats.end_time - stats.start_time
    return None


def page_at_history(page: str, history: pa.Table) -> int:
    """The bytes of the page drawn from a whole history's summary: the same map points and top
    lists (12 months, and ten names each), every month of the history in `monthly`."""
    data = dashboard_page_data(page)
    data["monthly"] = monthly(history)
    data["through"] = max(history["crash_date"].to_pylist()).isoformat()
    return len(render(data).encode())
