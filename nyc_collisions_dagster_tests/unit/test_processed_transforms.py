"""The processed layer's rules, as plain functions on Arrow tables, without Dagster."""

from datetime import date, timezone

import pyarrow as pa
import pytest

from nyc_collisions_dagster.processed.transforms import (
    FACTOR_COLUMNS,
    Findings,
    contributing_factors,
    crash_datetime,
    null_outside,
    process_crashes,
    process_persons,
    process_vehicles,
    respelled_factors,
    vehicle_types,
)
from nyc_collisions_dagster.raw.schema import SCHEMAS


def _instants(days: list[date], times: list[str | None]) -> tuple[list[str | None], int]:
    result, unreadable = crash_datetime(
        pa.chunked_array([days], pa.date32()), pa.chunked_array([times], pa.string())
    )
    utc = [
        None if v is None else v.astimezone(timezone.utc).isoformat() for v in result.to_pylist()
    ]
    return utc, unreadable


@pytest.mark.parametrize(
    "day, text, utc",
    [
        (date(2024, 1, 5), "9:35", "2024-01-05T14:35:00+00:00"),
        (date(2024, 7, 5), "09:05", "2024-07-05T13:05:00+00:00"),
        (date(2024, 7, 5), " 0:00 ", "2024-07-05T04:00:00+00:00"),
        (date(2024, 7, 5), "23:59", "2024-07-06T03:59:00+00:00"),
        # Spring forward (2:00 EST -> 3:00 EDT): the skipped hour is read on the clock before.
        (date(2024, 3, 10), "2:00", "2024-03-10T07:00:00+00:00"),
        (date(2024, 3, 10), "2:30", "2024-03-10T07:30:00+00:00"),
        (date(2024, 3, 10), "3:00", "2024-03-10T07:00:00+00:00"),
        # Fall back (2:00 EDT -> 1:00 EST): the repeated hour takes its first occurrence, EDT.
        (date(2024, 11, 3), "1:30", "2024-11-03T05:30:00+00:00"),
        (date(2024, 11, 3), "2:30", "2024-11-03T07:30:00+00:00"),
    ],
)
def test_crash_datetime_reads_new_york_clock_times(day, text, utc) -> None:
    assert _instants([day], [text]) == ([utc], 0)


def test_unreadable_times_are_null_and_counted_but_missing_ones_are_not() -> None:
    texts = ["24:00", "7:5", "12:60", "", "abc", "7:05 PM", None]
    utc, unreadable = _instants([date(2024, 1, 1)] * len(texts), texts)
    assert utc == [None] * len(texts)
    assert unreadable == 6


def test_time_columns_keep_the_day_when_the_time_is_unreadable() -> None:
    persons = _table(
        "persons",
        [
            {
                "unique_id": 1,
                "collision_id": 9,
                "crash_date": date(2024, 3, 10),
                "crash_time": "2:30",
            },
            {
                "unique_id": 2,
                "collision_id": 9,
                "crash_date": date(2024, 3, 3),
                "crash_time": "24:00",
            },
        ],
    )
    findings = Findings()
    rows = process_persons(persons, _NO_CRASHES, findings).to_pylist()
    parts = [
        tuple(r[f"crash_{p}"] for p in ("year", "month", "day", "hour", "minute")) for r in rows
    ]
    assert parts == [(2024, 3, 3, None, None), (2024, 3, 10, 3, 30)]  # sorted by crash_date
    assert findings["unreadable_times"] == 1


def _table(name: str, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS[name])


_NO_CRASHES = SCHEMAS["crashes"].empty_table()


def test_persons_and_vehicles_carry_their_crash_place_from_the_same_month() -> None:
    crashes = _table(
        "crashes",
        [
            {"collision_id": 7, "borough": "QUEENS", "zip_code": "11368"},
            {"collision_id": 8, "borough": None, "zip_code": "10001"},
        ],
    )
    persons = _table(
        "persons",
        [{"unique_id": i, "collision_id": c} for i, c in enumerate([8, 7, 99, 7])],
    )
    vehicles = _table("vehicles", [{"unique_id": 1, "collision_id": 7}])
    findings = Findings()
    places = process_persons(persons, crashes, findings).select(["borough", "zip_code"])
    assert places.to_pylist() == [
        {"borough": None, "zip_code": "10001"},
        {"borough": "QUEENS", "zip_code": "11368"},
        {"borough": None, "zip_code": None},  # crash 99 is not in the month
        {"borough": "QUEENS", "zip_code": "11368"},
    ]
    assert findings["crash_not_in_month"] == 1
    vehicle = process_vehicles(vehicles, crashes, findings).to_pylist()[0]
    assert (vehicle["borough"], vehicle["zip_code"]) == ("QUEENS", "11368")
    assert findings["crash_not_in_month"] == 1


def test_factors_are_distinct_and_specified_and_types_keep_every_vehicle() -> None:
    crashes = _table(
        "crashes",
        [
            {
                "contributing_factor_vehicle_1": "Unsafe Speed",
                "contributing_factor_vehicle_2": "Unspecified",
                "contributing_factor_vehicle_3": "unsafe speed",
                "contributing_factor_vehicle_4": "80",
                "contributing_factor_vehicle_5": "Driver Inexperience",
                "vehicle_type_code1": "Sedan",
                "vehicle_type_code2": "Sedan",
                "vehicle_type_code_3": None,
                "vehicle_type_code_4": "",
                "vehicle_type_code_5": "Bike",
            },
            {"contributing_factor_vehicle_1": "Unspecified"},
        ],
    )
    findings = Findings()
    respelled = respelled_factors(crashes, FACTOR_COLUMNS, findings)
    assert findings["factors_respelled"] == 1  # "unsafe speed"; dropped codes are not respelled
    assert contributing_factors(respelled).to_pylist() == [
        ["Unsafe Speed", "Driver Inexperience"],
        [],
    ]
    assert vehicle_types(crashes).to_pylist() == [["Sedan", "Sedan", "Bike"], []]


def test_crashes_count_their_persons_and_vehicles_rows() -> None:
    crashes = _table(
        "crashes",
        [
            {"collision_id": 2, "crash_date": date(2024, 1, 2), "crash_time": "8:00"},
            {"collision_id": 1, "crash_date": date(2024, 1, 2), "crash_time": "8:00"},
        ],
    )
    injuries = ["Injured", "Killed", "Unspecified", "Injured", None]
    persons = _table(
        "persons",
        [{"unique_id": i, "collision_id": 1, "person_injury": v} for i, v in enumerate(injuries)]
        + [{"unique_id": 9, "collision_id": None, "person_injury": "Injured"}],
    )
    vehicles = _table(
        "vehicles", [{"unique_id": 5, "collision_id": 2}, {"unique_id": 6, "collision_id": 2}]
    )
    rows = process_crashes(crashes, persons, vehicles, Findings()).to_pylist()
    counts = [
        (
            r["collision_id"],
            r["person_count"],
            r["persons_injured"],
            r["persons_killed"],
            r["vehicle_count"],
        )
        for r in rows
    ]
    assert counts == [(1, 5, 2, 1, 0), (2, 0, 0, 0, 2)]


def test_points_outside_the_city_and_impossible_ages_become_null_and_are_counted() -> None:
    points = pa.table(
        {
            "latitude": [40.7128, 0.0, 40.7128, None, 41.5, None],
            "longitude": [-74.006, 0.0, -80.0, -74.0, -73.9, None],
        }
    )
    kept, nulled = null_outside(
        points, {"latitude": (40.477399, 40.917577), "longitude": (-74.25909, -73.700272)}
    )
    assert kept.to_pylist()[0] == {"latitude": 40.7128, "longitude": -74.006}
    assert all(r == {"latitude": None, "longitude": None} for r in kept.to_pylist()[1:])
    assert nulled == 4  # the row that was already empty is not counted
    persons = _table(
        "persons",
        [{"unique_id": i, "person_age": age} for i, age in enumerate([0, 120, -1, 121, 35, None])],
    )
    findings = Findings()
    ages = process_persons(persons, _NO_CRASHES, findings)["person_age"].to_pylist()
    assert ages == [0, 120, None, None, 35, None]
    assert findings["ages_nulled"] == 2
