"""reconciliation_sensor: each day, fetch again the crash days where the lake and the source differ.

It finds what late_records_sensor cannot see: rows deleted upstream, rows inserted without a new
:updated_at, and days left stale by a run that failed and was never re-run. It also records the
days whose files a killed run wrote but had not recorded (unrecorded.py).
"""

from collections.abc import Mapping
from contextlib import closing
from datetime import date, datetime, timezone

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.listing import first_and_more
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.raw.days import days_between
from nyc_collisions_dagster.raw.reconciliation import (
    Comparison,
    compare,
    never_landed_text,
    partition_days,
)
from nyc_collisions_dagster.raw.ticks import capped_run_requests, sensor_resources
from nyc_collisions_dagster.raw.unrecorded import unrecorded

# Runs that may still write partitions: a day they cover is not requested again.
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
_LARGEST = 3  # differing days named in the tick's summary
# Unrecorded days recorded per tick: each file is read whole, so a lake that another instance
# landed is adopted over a few ticks, each well within a sensor evaluation's time limit.
MAX_RECORDED_PER_TICK = 200


@dg.sensor(
    name="reconciliation_sensor",
    target=collision_assets,
    minimum_interval_seconds=24 * 3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Compares every landed day's rows in the lake with Socrata's count and "
    "re-materializes the days that differ (deletions, inserts without a new :updated_at, days "
    "left stale), and records the landed days that a killed run left unrecorded. Never-landed "
    "days are reported, not requested.",
)
def reconciliation_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    datasets, history = list(DATASETS.values()), set(partition_days())
    with (
        sensor_resources(context) as (socrata, io_manager),
        closing(socrata.get_client(context.log)) as client,
    ):
        comparisons = compare(client, context.instance, datasets, sorted(history))
        busy = days_in_progress(context.instance)
        found: list[dg.AssetMaterialization] = []
        left = 0
        for c in comparisons:
            store = io_manager.store(c.asset)
            events, more = unrecorded(
                store, history, c.landed, busy[c.asset], MAX_RECORDED_PER_TICK - len(found)
            )
            found, left = found + events, left + more
    summary = _summary(comparisons, busy)
    if found:
        # Compared with the source on the next tick, once they are recorded.
        named = [f"{e.asset_key.to_user_string()} {e.partition}" for e in found]
        summary += f"; recorded {len(found):,} landed days that no run had recorded: "
        summary += first_and_more(named)
        summary += f" ({left:,} more on the next ticks)" if left else ""
    context.log.info(summary)
    wanted = {c.asset: set(c.differing) - busy[c.asset] for c in comparisons}
    wanted = {name: days for name, days in wanted.items() if days}
    if not wanted:
        return dg.SensorResult(asset_events=found) if found else dg.SkipReason(summary)
    # A range coalesced past the cap must not land never-landed days or rewrite busy ones.
    fetchable = {c.asset: c.landed - busy[c.asset] for c in comparisons}
    # One tick a day: the same day's request is made once, even if the tick is evaluated again.
    run_key = f"reconciliation-{datetime.now(timezone.utc).date()}"
    run_requests, capped = capped_run_requests(wanted, run_key, fetchable)
    if capped:
        context.log.warning(capped)
    return dg.SensorResult(run_requests=run_requests, asset_events=found)


def days_in_progress(instance: dg.DagsterInstance) -> dict[str, set[date]]:
    """Per dataset, the days that a queued or running run may still write."""
    busy: dict[str, set[date]] = {name: set() for name in DATASETS}
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED)):
        days = _run_days(run.tags)
        # A job's run of all its assets records no selection: it may write every dataset.
        names = {key.to_user_string() for key in run.asset_selection or ()} or set(DATASETS)
        for name in names & busy.keys():
            busy[name] |= days
    return busy


def _run_days(tags: Mapping[str, str]) -> set[date]:
    """The days a run's partition tags name; none for a run of another partitioning."""
    try:
        if "dagster/partition" in tags:
            return {date.fromisoformat(tags["dagster/partition"])}
        if "dagster/asset_partition_range_start" in tags:
            return days_between(
                date.fromisoformat(tags["dagster/asset_partition_range_start"]),
                date.fromisoformat(tags["dagster/asset_partition_range_end"]),
            )
    except ValueError:  # e.g. a month of the processed layer
        pass
    return set()


def _summary(comparisons: list[Comparison], busy: Mapping[str, set[date]]) -> str:
    """One line: days compared, days differing with the largest differences, days left alone."""
    differing = [
        (abs(source - (lake or 0)), c.asset, day, source, lake)
        for c in comparisons
        for day, (source, lake) in c.differing.items()
    ]
    largest = sorted(differing, key=lambda item: -item[0])[:_LARGEST]
    text = f"{sum(len(c.landed) for c in comparisons):,} landed days compared, "
    text += f"{len(differing):,} differ from Socrata"
    if largest:
        shown = "; ".join(f"{a} {d}: source {s:,}, lake {lake}" for _, a, d, s, lake in largest)
        text += f" (largest: {shown})"
    if running := sum(len(c.differing.keys() & busy[c.asset]) for c in comparisons):
        text += f"; {running} of them are being written by a run in progress, not requested"
    never = [f"{c.asset} {never_landed_text(c)}" for c in comparisons if c.never_landed]
    if never:
        text += "; not requested (filling them is a backfill's job): " + ", ".join(never)
    return text
