"""Declarative automation: a processed month is rebuilt whenever one of its raw days changes."""

import dagster as dg

from nyc_collisions_dagster.constants import PROCESSED_GROUP_NAME, REPORTS_GROUP_NAME

# Like AutomationCondition.eager(), but over every month, not only the latest time window: the
# late-records sensor and backfills re-materialize days of older months too. A month whose raw
# days have not all landed waits for them (its run would refuse to write a partial month).
raw_days_changed = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("a raw day of the month changed")

# The summary covers every month: it follows any month of processed crashes that changed, once
# no month is being built (and never while it is itself being built, so two summary runs never
# race on its one file). The first evaluation builds it from what is there.
processed_months_changed = (
    (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("a processed month changed")

# Running by default, so that `dagster dev` (make dev) keeps the processed layer fresh as soon
# as the daemon runs; the raw schedule and sensors stay opt-in as before.
processed_automation_sensor = dg.AutomationConditionSensorDefinition(
    "processed_automation_sensor",
    target=dg.AssetSelection.groups(PROCESSED_GROUP_NAME, REPORTS_GROUP_NAME),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Requests the processed months whose raw days were materialized since the "
    "last tick (backfills of many months become one ranged run).",
)
