"""A run's months as they are written: their figures and metadata, and the months that failed.

A month that cannot be written for a cause of its own fails alone, and the run builds the others;
a cause every write would meet (a full disk, refused credentials: StorageError.every_write) stops
it. Either way the months written are recorded, and the run fails naming the others.
"""

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.lake.storage import MonthStore, StorageError
from nyc_collisions_dagster.listing import first_and_more
from nyc_collisions_dagster.processed.checks import MonthFigures
from nyc_collisions_dagster.processed.tables import TABLES
from nyc_collisions_dagster.processed.transforms import Findings


class MonthsNotWritten(RuntimeError):
    """A run ended before every month was written; the months written are materialized."""


class MonthsWritten:
    """Writes each table's months to `stores`, keeping what the run records of each."""

    def __init__(self, stores: Mapping[str, MonthStore], log: logging.Logger) -> None:
        self.stores, self.log = stores, log
        self.figures: dict[str, dict[str, MonthFigures]] = {name: {} for name in stores}
        self.metadata: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in stores}
        self.failed: dict[tuple[str, str], StorageError] = {}  # (month, name) -> why

    @property
    def stopped(self) -> bool:
        """A write failed for a cause that every other write would meet."""
        return any(exc.every_write for exc in self.failed.values())

    def write(
        self, name: str, month: str, table: pa.Table, raw: pa.Table, findings: Findings
    ) -> dict[str, Any] | None:
        """Write one table's month; its metadata, or None if it could not be written."""
        if self.stopped:
            return None
        store = self.stores[name]
        try:
            store.write(month, table)
        except StorageError as exc:
            self.failed[(month, name)] = exc
            if not exc.every_write:
                self.log.warning(f"{exc}. The run goes on with the other months.")
            return None
        self.figures[name][month] = _figures(name, table, raw, store.row_count(month))
        self.metadata[name][month] = _month_metadata(name, table, findings, store.uri(month))
        return self.metadata[name][month]

    def summary(self, month: str) -> str:
        rows = [f"{n} {f[month].rows:,} rows" for n, f in self.figures.items() if month in f]
        return f"{month}: " + ", ".join(rows)

    def materializations(self) -> Iterator[dg.AssetMaterialization]:
        for name, months in self.metadata.items():
            for month, metadata in months.items():
                yield dg.AssetMaterialization(TABLES[name].key, partition=month, metadata=metadata)

    def error(self, months: list[str]) -> MonthsNotWritten:
        """The run's error: what was not written, caused by the first month's failure. That one
        carries no stack: its message names the path and the cause, and Dagster prints the root
        cause of a chain last, as for the raw layer's days (landing.py)."""
        missing = [f"{n} {m}" for m in months for n in self.stores if m not in self.metadata[n]]
        done = sum(map(len, self.metadata.values()))
        error = MonthsNotWritten(
            f"{done} of {done + len(missing)} months written and materialized; not written: "
            f"{first_and_more(missing)}. Materializing the failed and missing partitions builds "
            "only those."
        )
        error.__cause__ = self.failed[min(self.failed)].with_traceback(None)
        return error


def _figures(name: str, table: pa.Table, raw: pa.Table, written: int) -> MonthFigures:
    keys = table[DATASETS[name].unique_key]
    return MonthFigures(
        raw_rows=raw.num_rows,
        rows=written,
        duplicate_keys=len(keys) - pc.count_distinct(keys).as_py(),
        without_persons=_crashes_without_persons(table) if name == "crashes" else 0,
    )


def _crashes_without_persons(crashes: pa.Table) -> int:
    return pc.sum(pc.equal(crashes["person_count"], 0)).as_py() or 0


def _month_metadata(name: str, table: pa.Table, findings: Findings, uri: str) -> dict[str, object]:
    """Numbers per month, which the UI plots month by month, the spellings no table maps, and the
    file's path."""
    totals = {"crashes": pc.count_distinct(table["collision_id"]).as_py()}
    if name == "crashes":  # the crash reports' own counts cover the whole history
        totals["persons_injured"] = pc.sum(table["number_of_persons_injured"]).as_py() or 0
        totals["persons_killed"] = pc.sum(table["number_of_persons_killed"]).as_py() or 0
        # KSI needs the persons rows, which are dense only from April 2016.
        for column in ("persons_seriously_injured", "ksi"):
            totals[column] = pc.sum(table[column]).as_py() or 0
    elif name == "persons":
        for outcome in ("Injured", "Killed"):
            rows = pc.sum(pc.equal(table["person_injury"], outcome)).as_py()
            totals[f"persons_{outcome.lower()}"] = rows or 0
        severity = table["injury_severity"]
        totals["persons_seriously_injured"] = pc.sum(pc.equal(severity, "A")).as_py() or 0
        totals["ksi"] = pc.sum(pc.is_in(severity, pa.array(["K", "A"]))).as_py() or 0
    unmapped = {
        f"unmapped_{kind}": dg.MetadataValue.json(dict(spellings.most_common()))
        for kind, spellings in sorted(findings.unmapped.items())
    }
    return {
        "dagster/row_count": table.num_rows,
        **totals,
        **dict(findings),
        **unmapped,
        "path": dg.MetadataValue.path(uri),
    }
