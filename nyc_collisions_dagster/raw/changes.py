"""What changed upstream since a cursor: the crash days to fetch again, including days rows left.

Socrata stamps every added or amended row with `:updated_at`. A row whose crash_date was
corrected shows only its new day; the day it left is found by looking its key up in the lake
around the new day.
"""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from nyc_collisions_dagster.constants import Dataset
from nyc_collisions_dagster.lake.storage import PartitionStore
from nyc_collisions_dagster.socrata.client import SocrataClient

# A correction moves a crash by days, not years: the lake is searched this far on each side.
MOVED_ROW_SEARCH_DAYS = 31
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z?")


def _stamp_literal(stamp: str) -> str:
    """A quoted SoQL timestamp, from a value checked to be one (cursors come from outside)."""
    if not _STAMP.fullmatch(stamp):
        raise ValueError(f"not a Socrata :updated_at timestamp: {stamp!r}")
    return f"'{stamp.removesuffix('Z')}'"


def latest_update(client: SocrataClient, dataset: Dataset) -> str | None:
    [row] = client.query(dataset.dataset_id, {"$select": "max(:updated_at) AS latest"})
    return row.get("latest")


@dataclass
class Changes:
    """Rows of one dataset stamped after a cursor."""

    days: set[date] = field(default_factory=set)
    keys: dict[int, date] = field(default_factory=dict)  # key -> its crash_date now
    latest: str | None = None
    # Too many rows to list: a full replace upstream. Then only the span of days is known.
    span: tuple[date, date] | None = None


def changes_since(client: SocrataClient, dataset: Dataset, stamp: str, limit: int) -> Changes:
    where = f":updated_at > {_stamp_literal(stamp)}"
    rows = client.query(
        dataset.dataset_id,
        {
            "$select": f"{dataset.unique_key}, crash_date, :updated_at",
            "$where": where,
            "$order": f":updated_at, {dataset.unique_key}",
            "$limit": str(limit + 1),
        },
    )
    changes = Changes()
    if len(rows) <= limit:
        for row in rows:
            day = date.fromisoformat(row["crash_date"][:10])
            changes.keys[int(row[dataset.unique_key])] = day
            changes.days.add(day)
        changes.latest = rows[-1][":updated_at"] if rows else None
        return changes
    [span] = client.query(
        dataset.dataset_id,
        {
            "$select": "min(crash_date) AS first, max(crash_date) AS last, "
            "max(:updated_at) AS latest",
            "$where": where,
        },
    )
    changes.span = (date.fromisoformat(span["first"][:10]), date.fromisoformat(span["last"][:10]))
    changes.latest = span["latest"]
    return changes


def days_left_behind(store: PartitionStore, key_column: str, keys: dict[int, date]) -> set[date]:
    """Days whose stored file holds one of `keys` although the row's crash_date is now another."""
    if not keys:
        return set()
    stored = store.partition_days()
    near = {
        day + timedelta(days=offset)
        for day in set(keys.values())
        for offset in range(-MOVED_ROW_SEARCH_DAYS, MOVED_ROW_SEARCH_DAYS + 1)
    }
    wanted = np.fromiter(keys, dtype=np.int64, count=len(keys))
    left: set[date] = set()
    for day in sorted(stored & near):
        found = store.read_column(day.isoformat(), key_column)
        if found is None:
            continue
        for key in found[np.isin(found, wanted)]:
            if keys[int(key)] != day:
                left.add(day)
                break
    return left
