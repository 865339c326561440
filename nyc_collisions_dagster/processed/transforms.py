"""The processed layer's rules: plain functions from a month of raw Arrow tables to its table.

Every raw column keeps its name and type; the rules add columns, null values that cannot be true
(a point outside the city, an age over 120) and give each contributing factor one spelling. What
each rule changed is counted.
"""

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nyc_collisions_dagster.constants import DATASETS, TIMEZONE
from nyc_collisions_dagster.processed.boroughs import locate_boroughs
from nyc_collisions_dagster.processed.severity import (
    SEVERITY_NOTE,
    injury_severity,
)
from nyc_collisions_dagster.processed.vocabulary import (
    UNMAPPED,
    VEHICLE_CATEGORIES,
    canonical_factors,
    unmapped_factors,
    unmapped_vehicle_types,
    vehicle_categories,
)
from nyc_collisions_dagster.raw.schema import SCHEMAS

# New York City's bounding box: a point outside it (0/0 included) is a geocoding failure.
NYC_LATITUDE = (40.477399, 40.917577)
NYC_LONGITUDE = (-74.259090, -73.700272)
PERSON_AGE = (0, 120)
# Socrata's crash_time is H:MM or HH:MM. Anything else ("24:00", "7:5", which could be 7:05 or
# 7:50) is not read as a time: it gives a null crash_datetime and is counted.
_TIME = r"^\s*(?P<hour>[01]?[0-9]|2[0-3]):(?P<minute>[0-5][0-9])\s*$"
_HOUR = pa.scalar(3_600_000_000, pa.duration("us"))

_TIME_FIELDS = [
    pa.field("crash_datetime", pa.timestamp("us", tz=TIMEZONE)),
    *(pa.field(f"crash_{part}", pa.int32()) for part in ("year", "month", "day", "hour", "minute")),
]
_PERSON_COUNTS = ("person_count", "persons_injured", "persons_killed", "persons_seriously_injured")
_CRASH_FIELDS = [
    *(pa.field(name, pa.int64()) for name in (*_PERSON_COUNTS, "ksi", "vehicle_count")),
    pa.field("contributing_factors", pa.list_(pa.string())),
    pa.field("vehicle_types", pa.list_(pa.string())),
    pa.field("vehicle_categories", pa.list_(pa.string())),
    pa.field("crash_borough", pa.string()),
    pa.field("crash_borough_source", pa.string()),
]
# Where the crash happened, carried on its persons and vehicles rows: the commonest question about
# people or vehicles ("by borough") then reads one table instead of joining 3 M rows to 1 M.
CRASH_PLACE = ["borough", "zip_code", "crash_borough"]
_PLACE_FIELDS = [pa.field(name, pa.string()) for name in CRASH_PLACE]
# What persons and vehicles rows add beyond their crash's place.
_OWN_FIELDS = {
    "persons": [pa.field("injury_severity", pa.string())],
    "vehicles": [pa.field("vehicle_category", pa.string())],
}
SCHEMAS_PROCESSED: dict[str, pa.Schema] = {
    name: pa.schema(
        [
            *SCHEMAS[name],
            *_TIME_FIELDS,
            *(_CRASH_FIELDS if name == "crashes" else [*_PLACE_FIELDS, *_OWN_FIELDS[name]]),
        ]
    )
    for name in DATASETS
}
# The raw columns each table reads of a dataset whose own table is not built in the same run.
_PERSON_FACTORS = ["contributing_factor_1", "contributing_factor_2"]


class Findings(Counter[str]):
    """What the rules changed, counted, and the spellings that no table maps, with their counts."""

    def __init__(self) -> None:
        super().__init__()
        self.unmapped: dict[str, Counter[str]] = {}

    def add_unmapped(self, kind: str, spellings: dict[str, int]) -> None:
        self.unmapped.setdefault(kind, Counter()).update(spellings)


# What the layer adds or changes, column by column: shown in the UI's column schema and as the
# columns' comments in the Hive DDL (catalog.py). The raw columns are the source's own.
_TIME_NOTES = {
    "crash_datetime": "New York time of crash_date and crash_time. Null when the time is not "
    "H:MM or HH:MM (counted: unreadable_times). A time in the hour skipped in spring is read on "
    "the clock before the change. One in the repeated autumn hour is its first occurrence.",
    "crash_year": "Year of crash_date.",
    "crash_month": "Month of crash_date, 1-12.",
    "crash_day": "Day of the month of crash_date.",
    "crash_hour": "Hour of crash_datetime on the New York clock. Null when the time is unreadable.",
    "crash_minute": "Minute of crash_datetime. Null when the time is unreadable.",
}
_PLACE_NOTES = {
    column: f"The {column} of the crash: the crash of the same month with this collision_id. "
    "Null when that crash has none or is not in the month (counted: crash_not_in_month)."
    for column in CRASH_PLACE
}
_FACTOR_NOTE = (
    "Source factor in the spelling of the NYPD list (counted: factors_respelled). Null for "
    "Unspecified and for codes that are not factors. other where no spelling maps (reported: "
    "unmapped_factors)."
)
_BOX = "Null when the point lies outside the New York City bounding box, 0/0 included, or has one"
COLUMN_NOTES: dict[str, dict[str, str]] = {
    "crashes": {
        "latitude": f"Source latitude. {_BOX} coordinate only (counted: coordinates_nulled).",
        "longitude": f"Source longitude. {_BOX} coordinate only (counted: coordinates_nulled).",
        **_TIME_NOTES,
        "person_count": "Persons rows of the same month with this collision_id.",
        "persons_injured": "Those of person_count whose person_injury is Injured.",
        "persons_killed": "Those of person_count whose person_injury is Killed.",
        "persons_seriously_injured": "Those of person_count whose injury_severity is A.",
        "ksi": "Persons killed or seriously injured: those of person_count whose "
        "injury_severity is K or A.",
        "vehicle_count": "Vehicles rows of the same month with this collision_id.",
        "contributing_factors": "The distinct contributing_factor_vehicle_1..5 in the spelling "
        "of the NYPD list, in column order, without Unspecified and codes that are not factors "
        "(counted: factors_respelled). other where no spelling maps (reported: unmapped_factors).",
        "vehicle_types": "The non-empty vehicle_type_code1, vehicle_type_code2 and "
        "vehicle_type_code_3..5, in order: one per vehicle reported.",
        "vehicle_categories": "The class of each entry of vehicle_types, in the same order "
        "(reported: unmapped_vehicle_types).",
        "crash_borough": "The source borough where it has one. Otherwise the borough whose "
        "boundary (NYC DCP, clipped to shoreline, 16A) holds the point, or the nearest borough "
        "within 250 m of it. Null when neither (counted: boroughs_from_coordinates, and "
        "borough_disagreements where the source and the boundary differ).",
        "crash_borough_source": "reported, coordinates, or null: where crash_borough comes from.",
    },
    "persons": {
        "person_age": "Source age. Null outside 0-120 (counted: ages_nulled).",
        **{name: _FACTOR_NOTE for name in _PERSON_FACTORS},
        **_TIME_NOTES,
        **_PLACE_NOTES,
        "injury_severity": SEVERITY_NOTE,
    },
    "vehicles": {
        **{name: _FACTOR_NOTE for name in _PERSON_FACTORS},
        **_TIME_NOTES,
        **_PLACE_NOTES,
        "vehicle_category": f"The class of vehicle_type, one of {', '.join(VEHICLE_CATEGORIES)}. "
        "Null when vehicle_type is empty. other where no spelling maps (reported: "
        "unmapped_vehicle_types).",
    },
}
FACTOR_COLUMNS = [f"contributing_factor_vehicle_{i}" for i in range(1, 6)]
VEHICLE_TYPE_COLUMNS = [
    "vehicle_type_code1",
    "vehicle_type_code2",
    *(f"vehicle_type_code_{i}" for i in range(3, 6)),
]


def crash_datetime(
    crash_date: pa.ChunkedArray, crash_time: pa.ChunkedArray
) -> tuple[pa.ChunkedArray, int]:
    """New York local time of each crash, and how many non-null times could not be read.

    A time in the hour skipped when clocks spring forward is read on the clock before the change
    (02:30 becomes 03:30 EDT); a time in the hour repeated in the fall takes its first occurrence.
    """
    parts = pc.extract_regex(crash_time, _TIME)
    hour = pc.cast(pc.struct_field(parts, "hour"), pa.int64())
    minute = pc.cast(pc.struct_field(parts, "minute"), pa.int64())
    micros = pc.multiply(pc.add(pc.multiply(hour, 60), minute), 60_000_000)
    naive = pc.add(pc.cast(crash_date, pa.timestamp("us")), pc.cast(micros, pa.duration("us")))
    local = _assume_local(naive)
    skipped = pc.not_equal(pc.local_timestamp(local), naive)
    shifted = pc.add(_assume_local(pc.subtract(naive, _HOUR)), _HOUR)
    result = pc.if_else(skipped, shifted, local)
    unreadable = pc.count(crash_time).as_py() - pc.count(result).as_py()
    return result, unreadable


def _assume_local(naive: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.assume_timezone(naive, timezone=TIMEZONE, ambiguous="earliest", nonexistent="latest")


def with_time_columns(table: pa.Table, findings: Counter[str]) -> pa.Table:
    """crash_datetime, and crash_year ... crash_minute as integers, appended to `table`.

    Year, month and day come from crash_date, so they are never null; hour and minute come from
    crash_datetime and are null where the time could not be read.
    """
    when, unreadable = crash_datetime(table["crash_date"], table["crash_time"])
    findings["unreadable_times"] += unreadable
    day = table["crash_date"]
    parts = [pc.year(day), pc.month(day), pc.day(day), pc.hour(when), pc.minute(when)]
    for field, values in zip(_TIME_FIELDS, [when, *parts]):
        table = table.append_column(field, pc.cast(values, field.type))
    return table


def _count_per_crash(
    collision_ids: pa.ChunkedArray, related: pa.Table, flags: dict[str, pa.ChunkedArray]
) -> dict[str, pa.Array]:
    """Rows of `related` per crash, and per crash the rows where each flag is true; 0 if none."""
    grouped = related.select(["collision_id"])
    for name, flag in flags.items():
        grouped = grouped.append_column(name, pc.cast(flag.fill_null(False), pa.int64()))
    sums = grouped.group_by("collision_id").aggregate(
        [([], "count_all"), *((name, "sum") for name in flags)]
    )
    position = pc.index_in(collision_ids, value_set=sums["collision_id"])
    found = {"rows": sums["count_all"], **{name: sums[f"{name}_sum"] for name in flags}}
    return {
        name: pc.cast(pc.take(values, position), pa.int64()).fill_null(0)
        for name, values in found.items()
    }


def _row_lists(columns: list[pa.ChunkedArray], keep: list[pa.ChunkedArray]) -> pa.ListArray:
    """Per row, the values of `columns` (in column order) where `keep` is true."""
    width, rows = len(columns), len(columns[0])
    mask = np.column_stack([k.fill_null(False).to_numpy(zero_copy_only=False) for k in keep])
    # Column-major concatenation, taken back in row-major order: row r's values are adjacent.
    stacked = pa.concat_arrays([c for column in columns for c in column.chunks])
    row_major = np.arange(width * rows).reshape(width, rows).T.ravel()
    values = stacked.take(pa.array(row_major[mask.ravel()]))
    offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _usable(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.and_kleene(pc.is_valid(column), pc.not_equal(pc.utf8_trim_whitespace(column), ""))


def respelled_factors(
    table: pa.Table, names: list[str], findings: Findings
) -> list[pa.ChunkedArray]:
    """The columns `names` of `table` in one spelling per factor, counting the values changed."""
    out = []
    for name in names:
        source = table[name]
        factors = pa.chunked_array([canonical_factors(source)], pa.string())
        # A spelling no table maps is reported as unmapped, not counted as respelled.
        respelled = pc.and_(pc.not_equal(factors, source), pc.not_equal(factors, UNMAPPED))
        changed = respelled.fill_null(False)
        findings["factors_respelled"] += pc.sum(changed).as_py() or 0
        findings.add_unmapped("factors", unmapped_factors(source))
        out.append(factors)
    return out


def contributing_factors(columns: list[pa.ChunkedArray]) -> pa.ListArray:
    """The distinct factors of each crash, from its respelled factor columns, in column order."""
    keep = []
    for j, column in enumerate(columns):
        repeated = [pc.equal(column, earlier).fill_null(False) for earlier in columns[:j]]
        fresh = pc.invert(_any(repeated)) if repeated else pc.is_valid(column)
        keep.append(pc.and_(pc.is_valid(column), fresh))
    return _row_lists(columns, keep)


def _any(flags: list[pa.ChunkedArray]) -> pa.ChunkedArray:
    result = flags[0]
    for flag in flags[1:]:
        result = pc.or_(result, flag)
    return result


def vehicle_types(crashes: pa.Table) -> pa.ListArray:
    """The vehicle type codes of each crash, one per vehicle reported, in order."""
    columns = [crashes[name] for name in VEHICLE_TYPE_COLUMNS]
    return _row_lists(columns, [_usable(column) for column in columns])


def categories_of(types: pa.ListArray, findings: Findings) -> pa.ListArray:
    """The vehicle class of each entry of each list of `types`, in the same order."""
    findings.add_unmapped("vehicle_types", unmapped_vehicle_types(types.values))
    return pa.ListArray.from_arrays(types.offsets, vehicle_categories(types.values))


def crash_boroughs(
    crashes: pa.Table, findings: Findings
) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Each crash's borough, the source's or else its point's, and where it came from.

    `crashes` has its points inside the city's box already. Where the source and the point name
    different boroughs, the source's stands: only the disagreement is counted.
    """
    reported = crashes["borough"]
    located = pa.chunked_array([locate_boroughs(crashes["latitude"], crashes["longitude"])])
    has_reported = _usable(reported)
    filled = pc.and_(pc.invert(has_reported), pc.is_valid(located))
    findings["boroughs_from_coordinates"] += pc.sum(filled).as_py() or 0
    differ = pc.and_(has_reported, pc.not_equal(reported, located)).fill_null(False)
    findings["borough_disagreements"] += pc.sum(differ).as_py() or 0
    borough = pc.if_else(has_reported, reported, located)
    source = pc.if_else(
        has_reported, "reported", pc.if_else(filled, "coordinates", pa.scalar(None, pa.string()))
    )
    return borough, source


def null_outside(table: pa.Table, bounds: dict[str, tuple[float, float]]) -> tuple[pa.Table, int]:
    """Null the columns of `bounds` together on rows where one is null or out of its bounds.

    Returns the table and the number of rows that lost a value.
    """
    outside = _any(
        [
            pc.invert(
                pc.and_(pc.greater_equal(table[n], lo), pc.less_equal(table[n], hi))
            ).fill_null(True)
            for n, (lo, hi) in bounds.items()
        ]
    )
    had_value = _any([pc.is_valid(table[name]) for name in bounds])
    nulled = pc.sum(pc.and_(outside, had_value)).as_py() or 0
    for name in bounds:
        field = table.schema.field(name)
        column = pc.if_else(outside, pa.scalar(None, field.type), table[name])
        table = table.set_column(table.schema.get_field_index(name), field, column)
    return table, nulled


def inside_city(crashes: pa.Table) -> tuple[pa.Table, int]:
    """`crashes` with points outside New York City's box nulled, and how many were."""
    return null_outside(crashes, {"latitude": NYC_LATITUDE, "longitude": NYC_LONGITUDE})


def process_crashes(
    crashes: pa.Table, persons: pa.Table, vehicles: pa.Table, findings: Findings
) -> pa.Table:
    """A month of crashes with their time columns, per-crash counts of persons and vehicles rows
    of the same month, their borough, lists of factors and vehicle types, and coordinates inside
    the city."""
    table, findings["coordinates_nulled"] = inside_city(crashes)
    table = with_time_columns(table, findings)
    injury, severity = persons["person_injury"], injury_severity(persons)
    people = _count_per_crash(
        table["collision_id"],
        persons,
        {
            "injured": pc.equal(injury, "Injured"),
            "killed": pc.equal(injury, "Killed"),
            "serious": pc.equal(severity, "A"),
            "ksi": pc.is_in(severity, pa.array(["K", "A"])),
        },
    )
    types = vehicle_types(table)
    borough, borough_source = crash_boroughs(table, findings)
    added = {
        "person_count": people["rows"],
        "persons_injured": people["injured"],
        "persons_killed": people["killed"],
        "persons_seriously_injured": people["serious"],
        "ksi": people["ksi"],
        "vehicle_count": _count_per_crash(table["collision_id"], vehicles, {})["rows"],
        "contributing_factors": contributing_factors(
            respelled_factors(table, FACTOR_COLUMNS, findings)
        ),
        "vehicle_types": types,
        "vehicle_categories": categories_of(types, findings),
        "crash_borough": borough,
        "crash_borough_source": borough_source,
    }
    for field in _CRASH_FIELDS:
        table = table.append_column(field, added[field.name])
    return _sorted("crashes", table)


def with_crash_place(table: pa.Table, crashes: pa.Table, findings: Findings) -> pa.Table:
    """The borough, ZIP code and crash_borough of each row's crash, from the month's crashes.

    Rows whose collision_id is not a crash of that month get nulls, and are counted.
    """
    position = pc.index_in(table["collision_id"], value_set=crashes["collision_id"])
    findings["crash_not_in_month"] += len(position) - pc.count(position).as_py()
    # The crashes' own findings are counted on the crashes table, not again here.
    borough, _ = crash_boroughs(inside_city(crashes)[0], Findings())
    place = {
        "borough": crashes["borough"],
        "zip_code": crashes["zip_code"],
        "crash_borough": borough,
    }
    for field in _PLACE_FIELDS:
        table = table.append_column(field, pc.take(place[field.name], position))
    return table


def _with_respelled_factors(table: pa.Table, findings: Findings) -> pa.Table:
    for name, column in zip(_PERSON_FACTORS, respelled_factors(table, _PERSON_FACTORS, findings)):
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def process_persons(persons: pa.Table, crashes: pa.Table, findings: Findings) -> pa.Table:
    """A month of persons with their time columns, their crash's place, their injury's severity,
    factors in one spelling, and ages outside 0-120 nulled."""
    table, findings["ages_nulled"] = null_outside(persons, {"person_age": PERSON_AGE})
    table = with_crash_place(with_time_columns(table, findings), crashes, findings)
    table = table.append_column("injury_severity", injury_severity(table))
    return _sorted("persons", _with_respelled_factors(table, findings))


def process_vehicles(vehicles: pa.Table, crashes: pa.Table, findings: Findings) -> pa.Table:
    """A month of vehicles with their time columns, their crash's place, their class, and factors
    in one spelling."""
    table = with_crash_place(with_time_columns(vehicles, findings), crashes, findings)
    types = table["vehicle_type"]
    findings.add_unmapped("vehicle_types", unmapped_vehicle_types(types))
    table = table.append_column("vehicle_category", vehicle_categories(types))
    return _sorted("vehicles", _with_respelled_factors(table, findings))


def _sorted(name: str, table: pa.Table) -> pa.Table:
    order = [("crash_date", "ascending"), (DATASETS[name].unique_key, "ascending")]
    return table.sort_by(order).cast(SCHEMAS_PROCESSED[name])
