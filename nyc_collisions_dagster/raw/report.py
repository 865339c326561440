"""What a fetch saw: rows per day against Socrata's counts, keys, and typing findings."""

import logging
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import numpy as np
import pyarrow as pa

from nyc_collisions_dagster.raw.schema import TypingReport, column_schema
from nyc_collisions_dagster.socrata.errors import RequestStats


@dataclass(frozen=True)
class LinkedIds:
    """The distinct collision_ids of a day's rows, and how many rows point at each."""

    ids: np.ndarray
    rows: np.ndarray

    def rows_not_in(self, crash_ids: np.ndarray) -> int:
        return int(self.rows[~np.isin(self.ids, crash_ids)].sum())


def _compact(keys: np.ndarray) -> np.ndarray:
    """Keys as 4-byte integers when they fit, as every key of the three datasets does so far:
    half the memory of the whole history's keys."""
    if len(keys) and keys.min() >= 0 and keys.max() <= np.iinfo(np.uint32).max:
        return keys.astype(np.uint32)
    return keys


@dataclass
class FetchReport:
    """Filled in while a DayStream is consumed; read by the metadata, the log and the checks."""

    asset: str
    unique_key: str
    source_counts: dict[date, int] = field(default_factory=dict)
    rows_by_day: dict[date, int] = field(default_factory=dict)
    typing: TypingReport = field(default_factory=TypingReport)
    # Kept for the checks, and so what grows with the range: each day's keys, 4 bytes a row while
    # they fit (8 beyond); and for persons and vehicles the crashes each day's rows point at,
    # each once with its rows (a third of the rows for persons).
    keys_by_day: dict[date, np.ndarray] = field(default_factory=dict)
    collision_ids_by_day: dict[date, LinkedIds] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_day.values())

    def record(self, day: date, table: pa.Table) -> None:
        self.rows_by_day[day] = table.num_rows
        self.keys_by_day[day] = _compact(table.column(self.unique_key).to_numpy())
        if self.unique_key != "collision_id":
            ids = table.column("collision_id").drop_null().to_numpy()
            self.collision_ids_by_day[day] = LinkedIds(*np.unique(ids, return_counts=True))

    def duplicate_keys(self) -> dict[int, list[date]]:
        """Keys found more than once among the days recorded, with the days holding them.

        One sorted copy of the keys, sorted in place: an argsort with a day for each key would
        hold several arrays of the whole history's keys at once.
        """
        if not self.keys_by_day:
            return {}
        keys = np.concatenate(list(self.keys_by_day.values()))
        keys.sort()
        repeated = np.unique(keys[1:][keys[1:] == keys[:-1]])
        del keys
        found: dict[int, list[date]] = {}
        if len(repeated):
            for day, day_keys in sorted(self.keys_by_day.items()):
                for key in np.unique(day_keys[np.isin(day_keys, repeated)]):
                    found.setdefault(int(key), []).append(day)
        return found

    def metadata(self, stats: RequestStats) -> dict[str, object]:
        found: dict[str, dict[str, int] | list[str]] = {
            "coerced_values": dict(sorted(self.typing.coerced.items())),
            "unknown_columns": sorted(self.typing.unknown_columns),
            "missing_columns": sorted(self.typing.missing_columns),
        }
        return {
            "dagster/column_schema": column_schema(self.asset),
            "requests": stats.requests,
            "retries": stats.retries,
            "bytes_received": stats.bytes,
            "source_count": sum(self.source_counts.values()),
            **{name: dg.MetadataValue.json(value) for name, value in found.items() if value},
        }

    def log_findings(self, log: logging.Logger, stats: RequestStats) -> None:
        log.info(
            f"{self.asset}: {self.rows:,} rows in {stats.requests} requests "
            f"({stats.retries} retries, {stats.bytes:,} bytes)"
        )
        if self.typing.unknown_columns:
            log.warning(
                f"{self.asset}: Socrata sent columns the schema does not know; they are not in "
                f"the files: {sorted(self.typing.unknown_columns)}"
            )
        if self.typing.missing_columns:
            log.warning(
                f"{self.asset}: Socrata did not send columns "
                f"{sorted(self.typing.missing_columns)}; they are null in the files"
            )
        if self.typing.coerced:
            log.warning(
                f"{self.asset}: values that are not valid for their column type were written as "
                f"null: {dict(sorted(self.typing.coerced.items()))}"
            )
