"""late_records_sensor: fetch again the crash days that Socrata added or amended rows for."""

import hashlib
import json
from contextlib import closing
from datetime import date, datetime, timezone

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS, START_DATE
from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.raw.changes import changes_since, days_left_behind, latest_update
from nyc_collisions_dagster.raw.days import days_between
from nyc_collisions_dagster.raw.ticks import capped_run_requests, sensor_resources
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.socrata.client import SocrataClient

# Changed rows listed per dataset and tick. Past it the change is a full replace upstream, and
# its whole span of days becomes one ranged run instead of thousands of one-day runs.
MAX_CHANGED_ROWS = 50_000


def _partitioned(days: set[date]) -> set[date]:
    """The days that are partitions now: not before 2012-07-01, not today or later."""
    first = date.fromisoformat(START_DATE)
    last = date.fromisoformat(daily_partitions.get_last_partition_key() or START_DATE)
    return {day for day in days if first <= day <= last}


@dg.sensor(
    name="late_records_sensor",
    target=collision_assets,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Re-materializes exactly the crash days whose rows Socrata added or amended "
    "since the last tick (per-dataset :updated_at cursor), and the days corrected rows left.",
)
def late_records_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    with (
        sensor_resources(context) as (socrata, io_manager),
        closing(socrata.get_client(context.log)) as client,
    ):
        return _evaluate(context, client, io_manager)


def _evaluate(
    context: dg.SensorEvaluationContext, client: SocrataClient, io_manager: ParquetIOManager
) -> dg.SensorResult | dg.SkipReason:
    cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    # A dataset the cursor does not know (the first tick, or a cursor from before the dataset was
    # watched) starts from "now": the history is the mass upload's job, not this sensor's.
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000")
    started = {
        name: latest_update(client, dataset) or now
        for name, dataset in DATASETS.items()
        if name not in cursor
    }
    watching = f"Started watching: changes after {started} will be fetched."
    if len(started) == len(DATASETS):
        return dg.SensorResult(skip_reason=watching, cursor=json.dumps(started))
    days_by_asset: dict[str, set[date]] = {}
    notes: list[str] = []
    new_cursor = cursor | started
    for name, dataset in DATASETS.items():
        if name in started:
            continue
        changes = changes_since(client, dataset, cursor[name], MAX_CHANGED_ROWS)
        if changes.latest is None:
            continue
        new_cursor[name] = changes.latest
        if changes.span:
            first, last = changes.span
            days = days_between(first, last)
            notes.append(
                f"{name}: more than {MAX_CHANGED_ROWS:,} rows changed (a full replace upstream?): "
                f"{first}...{last} is fetched again as one ranged run"
            )
        else:
            store = io_manager.store(name)
            days = changes.days | days_left_behind(store, dataset.unique_key, changes.keys)
        if days := _partitioned(days):
            days_by_asset[name] = days
    if new_cursor == cursor:
        return dg.SkipReason(f"No rows added or amended upstream since {cursor}.")
    if not days_by_asset:
        # Rows of today (not a partition yet) are the daily schedule's, tomorrow.
        today_only = "Only days that are not partitions yet changed upstream."
        return dg.SensorResult(
            skip_reason=watching if started else today_only, cursor=json.dumps(new_cursor)
        )
    digest = hashlib.sha1(json.dumps(new_cursor, sort_keys=True).encode()).hexdigest()[:12]
    run_requests, capped = capped_run_requests(days_by_asset, digest)
    for note in notes + ([capped] if capped else []):
        context.log.warning(note)
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(new_cursor))
