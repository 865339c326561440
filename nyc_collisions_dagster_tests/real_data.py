"""Loader of the real NYC collisions rows kept beside the repository in shared/data/socrata.

The files are portal CSV exports (see SOURCES.md there); this turns them into the rows the API
would serve: API field names (with the crashes street-name swap), ``YYYY-MM-DDT00:00:00.000``
dates, integers without pandas' ``.0``, a ``Location`` for the location column and absent
fields for empty cells.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from nyc_collisions_dagster_tests.soda_fake.generator import FIELDS, TYPES, Location, Row

# The repo root is parents[1]; CI clones it elsewhere with shared/ beside it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "socrata"
LINKED_DAYS = ("20240101", "20240102", "20240103", "20240104", "20240105")
_LINKED_FILES = {
    name: f"{name}/linked_2024-01-01_to_05/Motor_Vehicle_Collisions_-_{title}_{{}}.csv"
    for name, title in (("crashes", "Crashes"), ("persons", "Person"), ("vehicles", "Vehicles"))
}
_CRASHES_2022_01 = "crashes/web_export/2022-01_full_month/nyc_mv_collisions_202201.csv"
# Display headers that do not map to API names by lower-casing (SOURCES.md §6).
_CRASH_HEADERS = {
    "CROSS STREET NAME": "off_street_name",
    "OFF STREET NAME": "cross_street_name",
    "VEHICLE TYPE CODE 1": "vehicle_type_code1",
    "VEHICLE TYPE CODE 2": "vehicle_type_code2",
}
# Columns pandas wrote as floats although the API sends integers.
_INTEGER_TEXT = {"zip_code", "vehicle_id"}
_FLOAT_INTEGER = re.compile(r"-?\d+\.0")
_US_DATE = re.compile(r"(\d\d)/(\d\d)/(\d{4})")


def available() -> bool:
    return all(
        (SHARED_DATA / pattern.format(day)).is_file()
        for pattern in _LINKED_FILES.values()
        for day in LINKED_DAYS
    )


def load_linked() -> dict[str, list[Row]]:
    """The complete crashes, persons and vehicles of 2024-01-01 … 2024-01-05, linked by id."""
    return {
        name: [row for day in LINKED_DAYS for row in _read(name, SHARED_DATA / pattern.format(day))]
        for name, pattern in _LINKED_FILES.items()
    }


def load_crashes_2022_01() -> list[Row]:
    """The 7,659 crashes of January 2022 from the portal's full-month export."""
    return _read("crashes", SHARED_DATA / _CRASHES_2022_01)


def load_all() -> dict[str, list[Row]]:
    """Everything loadable: the linked days plus the January 2022 crashes."""
    rows = load_linked()
    rows["crashes"] = load_crashes_2022_01() + rows["crashes"]
    return rows


def _api_name(dataset: str, header: str) -> str:
    if dataset == "crashes":
        return _CRASH_HEADERS.get(header, header.lower().replace(" ", "_"))
    return header.lower()


def _read(dataset: str, path: Path) -> list[Row]:
    fields, types = FIELDS[dataset], TYPES[dataset]
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [_api_name(dataset, h) for h in next(reader)]
        positions = [header.index(name) for name in fields]
        rows = []
        for cells in reader:
            rows.append(
                tuple(
                    _value(name, kind, cells[i]) for name, kind, i in zip(fields, types, positions)
                )
            )
    return rows


def _value(name: str, kind: str, cell: str) -> str | Location | None:
    if cell == "":
        return None
    if kind == "floating_timestamp":
        us = _US_DATE.fullmatch(cell)
        return (f"{us[3]}-{us[1]}-{us[2]}" if us else cell[:10]) + "T00:00:00.000"
    if kind == "location":
        latitude, longitude = (_integer(part.strip()) for part in cell.strip("()").split(","))
        return Location(latitude, longitude)
    return _integer(cell) if kind == "number" or name in _INTEGER_TEXT else cell


def _integer(text: str) -> str:
    return text[:-2] if _FLOAT_INTEGER.fullmatch(text) else text
