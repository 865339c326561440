"""The dashboard's figures: the map's 12 months, the top names counted once per KSI crash, and
the headline table's months."""

from datetime import date

import pyarrow as pa

from nyc_collisions_dagster.reports.figures import (
    headline_table,
    latest_full_month,
    map_months,
    top_names,
)


def test_the_map_covers_the_12_calendar_months_ending_with_the_month_of_through() -> None:
    months = map_months(date(2024, 4, 17))
    assert months[0] == "2023-05" and months[-1] == "2024-04" and len(months) == 12


def test_the_latest_full_month_is_through_s_own_only_on_its_last_day() -> None:
    assert latest_full_month(date(2024, 4, 30)) == "2024-04"
    assert latest_full_month(date(2024, 4, 29)) == "2024-03"
    assert latest_full_month(date(2024, 1, 5)) == "2023-12"


def test_top_names_count_ksi_crashes_once_per_name_ties_by_name() -> None:
    crashes = pa.table(
        {
            "ksi": [1, 2, 0, None, 1],
            "contributing_factors": [
                ["Speeding", "Unsafe Lane Changing"],
                ["Unsafe Lane Changing"],
                ["Speeding", "Speeding Again"],  # not a KSI crash
                ["Speeding"],  # ksi unknown: not a KSI crash
                [],
            ],
        }
    )
    assert top_names(crashes, "contributing_factors") == [
        {"name": "Unsafe Lane Changing", "crashes": 2},
        {"name": "Speeding", "crashes": 1},
    ]
    assert top_names(crashes.slice(2, 2), "contributing_factors") == []


def test_the_headline_table_compares_the_latest_full_month_with_the_one_before_and_a_year_ago():
    monthly = [
        {"month": "2023-03", "borough": "BRONX", "crashes": 90, "ksi": 4},
        {"month": "2024-02", "borough": "BRONX", "crashes": 100, "ksi": 5},
        {"month": "2024-03", "borough": "BRONX", "crashes": 1200, "ksi": 7},
        {"month": "2024-03", "borough": None, "crashes": 3, "ksi": 0},
        {"month": "2024-04", "borough": "BRONX", "crashes": 50, "ksi": 1},  # not over yet
    ]
    table = headline_table({"through": "2024-04-10", "monthly": monthly})
    lines = table.splitlines()
    assert lines[0] == (
        "| borough | 2024-03 crashes / KSI | 2024-02 crashes / KSI | 2023-03 crashes / KSI |"
    )
    assert "| BRONX | 1,200 / 7 | 100 / 5 | 90 / 4 |" in lines
    assert "| unknown | 3 / 0 | 0 / 0 | 0 / 0 |" in lines
    assert headline_table({"through": None, "monthly": []}) == "No crash in the lake yet."
