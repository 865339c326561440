"""The processed tables, each declared once: the raw datasets it is made from, the columns it
reads of each, and its transform. The assets' deps, the columns a step reads and the build all
follow from here."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from nyc_collisions_dagster.constants import PROCESSED_PREFIX
from nyc_collisions_dagster.processed.severity import SEVERITY_COLUMNS
from nyc_collisions_dagster.processed.transforms import (
    Findings,
    process_crashes,
    process_persons,
    process_vehicles,
)

_CRASH_PLACE_READ = ["collision_id", "borough", "zip_code", "latitude", "longitude"]


@dataclass(frozen=True)
class ProcessedTable:
    """One monthly table: `reads` maps each raw source, in the transform's argument order, to
    the columns read of it (None: all of them, for the table's own dataset)."""

    name: str
    reads: Mapping[str, list[str] | None]
    transform: Callable[..., pa.Table]

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([PROCESSED_PREFIX, self.name])

    @property
    def sources(self) -> list[str]:
        return list(self.reads)

    def build(self, raw: Mapping[str, pa.Table], findings: Findings) -> pa.Table:
        """The month's table from its sources' raw tables of that month."""
        return self.transform(*(raw[source] for source in self.reads), findings)


# crashes counts its persons (with their severity) and vehicles rows; persons and vehicles
# carry their crash's place.
TABLES: dict[str, ProcessedTable] = {
    table.name: table
    for table in (
        ProcessedTable(
            "crashes",
            {
                "crashes": None,
                "persons": ["collision_id", *SEVERITY_COLUMNS],
                "vehicles": ["collision_id"],
            },
            process_crashes,
        ),
        ProcessedTable("persons", {"persons": None, "crashes": _CRASH_PLACE_READ}, process_persons),
        ProcessedTable(
            "vehicles", {"vehicles": None, "crashes": _CRASH_PLACE_READ}, process_vehicles
        ),
    )
}


def columns_to_read(tables: Iterable[ProcessedTable]) -> dict[str, list[str] | None]:
    """What one step reads of each raw source to build all of `tables`, reading each source once."""
    wanted: dict[str, list[str] | None] = {}
    for table in tables:
        for source, columns in table.reads.items():
            known = wanted.get(source, [])
            if columns is None or known is None:
                wanted[source] = None
            else:
                wanted[source] = list(dict.fromkeys([*known, *columns]))
    return wanted
