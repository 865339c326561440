"""One explicit Arrow schema per dataset, and the conversion of Socrata's text values to it.

Socrata sends every value as text and omits null fields, so a quiet day can lack whole columns:
types are never inferred from the data, they come from here.
"""

from collections import Counter
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from nyc_collisions_dagster.metadata import table_schema

_COUNTS = [
    f"number_of_{who}_{what}"
    for who in ("persons", "pedestrians", "cyclist", "motorist")
    for what in ("injured", "killed")
]


def _fields(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype, nullable=True) for name, dtype in columns])


def _text(*names: str) -> list[tuple[str, pa.DataType]]:
    return [(name, pa.string()) for name in names]


SCHEMAS: dict[str, pa.Schema] = {
    "crashes": _fields(
        ("crash_date", pa.date32()),
        *_text("crash_time", "borough", "zip_code"),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        *_text("on_street_name", "off_street_name", "cross_street_name"),
        *[(name, pa.int64()) for name in _COUNTS],
        *_text(*(f"contributing_factor_vehicle_{i}" for i in range(1, 6))),
        ("collision_id", pa.int64()),
        *_text("vehicle_type_code1", "vehicle_type_code2"),
        *_text(*(f"vehicle_type_code_{i}" for i in range(3, 6))),
    ),
    "persons": _fields(
        ("unique_id", pa.int64()),
        ("collision_id", pa.int64()),
        ("crash_date", pa.date32()),
        *_text("crash_time", "person_id", "person_type", "person_injury", "vehicle_id"),
        ("person_age", pa.int64()),
        *_text(
            "ejection",
            "emotional_status",
            "bodily_injury",
            "position_in_vehicle",
            "safety_equipment",
            "ped_location",
            "ped_action",
            "complaint",
            "ped_role",
            "contributing_factor_1",
            "contributing_factor_2",
            "person_sex",
        ),
    ),
    "vehicles": _fields(
        ("unique_id", pa.int64()),
        ("collision_id", pa.int64()),
        ("crash_date", pa.date32()),
        *_text(
            "crash_time",
            "vehicle_id",
            "state_registration",
            "vehicle_type",
            "vehicle_make",
            "vehicle_model",
        ),
        ("vehicle_year", pa.int64()),
        ("travel_direction", pa.string()),
        ("vehicle_occupants", pa.int64()),
        *_text(
            "driver_sex",
            "driver_license_status",
            "driver_license_jurisdiction",
            "pre_crash",
            "point_of_impact",
            "vehicle_damage",
            "vehicle_damage_1",
            "vehicle_damage_2",
            "vehicle_damage_3",
            "public_property_damage",
            "public_property_damage_type",
            "contributing_factor_1",
            "contributing_factor_2",
        ),
    ),
}

# Socrata columns known and deliberately not kept: `location` repeats latitude and longitude.
DROPPED_COLUMNS = frozenset({"location"})

# What a readable value of each type looks like; anything else is coerced to null and counted.
_VALID_TEXT = {
    pa.int64(): r"^[-+]?[0-9]{1,18}$",
    pa.float64(): r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$",
    pa.date32(): r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
}


def column_schema(asset: str) -> dg.TableSchema:
    """The Arrow schema as Dagster shows it in the UI."""
    return table_schema(SCHEMAS[asset])


@dataclass
class TypingReport:
    """What typing a page changed: values it could not read, columns it added or ignored."""

    coerced: Counter[str] = field(default_factory=Counter)
    missing_columns: set[str] = field(default_factory=set)
    unknown_columns: set[str] = field(default_factory=set)


def _cast(column: pa.ChunkedArray | pa.Array, dtype: pa.DataType) -> pa.Array:
    if dtype == pa.date32():
        # Socrata sends floating timestamps such as 2021-09-11T00:00:00.000: the day is the prefix.
        column = pc.utf8_slice_codeunits(column, 0, 10)
    return pc.cast(column, dtype)


def to_typed(raw: pa.Table, schema: pa.Schema, report: TypingReport) -> pa.Table:
    """Cast a table of Socrata text columns to `schema`.

    A value that does not parse becomes null and is counted in `report.coerced`; a column
    the source did not send becomes an all-null column and is named in `report.missing_columns`.
    """
    columns = []
    sent = set(raw.column_names)
    for target in schema:
        if target.name not in sent:
            report.missing_columns.add(target.name)
            columns.append(pa.nulls(raw.num_rows, target.type))
            continue
        column = raw.column(target.name)
        if target.type == pa.string():
            columns.append(column)
            continue
        try:
            columns.append(_cast(column, target.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns.append(_cast_leniently(column, target.type, target.name, report))
    return pa.Table.from_arrays(columns, schema=schema)


def _cast_leniently(
    column: pa.ChunkedArray, dtype: pa.DataType, name: str, report: TypingReport
) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(column)
    valid = pc.match_substring_regex(trimmed, _VALID_TEXT[dtype])
    kept = pc.if_else(valid, trimmed, pa.scalar(None, pa.string()))
    try:
        typed = _cast(kept, dtype)
    except pa.ArrowInvalid:
        # Well-formed but impossible values (2024-02-30) fail the vectorised cast: go one by one.
        typed = pa.array([_cast_value(v, dtype) for v in kept.to_pylist()], dtype)
    report.coerced[name] += pc.count(column).as_py() - pc.count(typed).as_py()
    return typed


def _cast_value(value: str | None, dtype: pa.DataType) -> object:
    if value is None:
        return None
    try:
        return _cast(pa.array([value]), dtype)[0].as_py()
    except pa.ArrowInvalid:
        return None
