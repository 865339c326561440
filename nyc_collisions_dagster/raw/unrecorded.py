"""Days whose file is in the lake but whose materialization is not in Dagster's records.

A run records each day right after its file is written (landing.py), so a run killed between
the two leaves a file that is whole (a rename, or a whole S3 object) but unrecorded. Such a file
holds the rows its run fetched: recorded as the run would have recorded it, its day is then
compared with the source like any other day, and fetched again if it differs.
"""

from collections.abc import Set
from datetime import date

import dagster as dg

from nyc_collisions_dagster.lake.storage import PartitionStore
from nyc_collisions_dagster.raw.landing import day_materialization

# Said on each such record: the UI shows why a day has a materialization and no run.
_FOUND_BY = "reconciliation_sensor: the file was written by a run that died before recording it"


def unrecorded(
    store: PartitionStore, days: Set[date], recorded: Set[date], busy: Set[date], limit: int
) -> tuple[list[dg.AssetMaterialization], int]:
    """The materializations of the first `limit` of `days` that have a file and no record, read
    from their files, and how many more there are. `busy` days are left to the run that may
    still be writing or recording them."""
    found = sorted((store.partition_days() & days) - recorded - busy)
    events = []
    for day in found[:limit]:
        key = day.isoformat()
        rows, digest = store.describe(key)
        events.append(day_materialization(store, key, rows, digest, {"found_by": _FOUND_BY}))
    return events, len(found) - len(events)
