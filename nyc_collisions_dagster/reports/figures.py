"""The dashboard's figures, from the summary tier and processed crashes: plain tables in, the
JSON object the page embeds out (its keys are documented on docs/data.md)."""

from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nyc_collisions_dagster.processed.summary import month_of

TOP = 10
# What the map needs of processed crashes, and what the top lists need.
POINT_COLUMNS = ["collision_id", "crash_date", "crash_borough", "latitude", "longitude", "ksi"]
LIST_COLUMNS = ["ksi", "contributing_factors", "vehicle_categories"]
MAP_MONTHS = 12
MONTHLY_FIGURES = ("crashes", "injured", "killed", "ksi")


def monthly(summary: pa.Table) -> list[dict[str, Any]]:
    """Crashes, injured, killed and KSI by month and crash_borough, null borough included."""
    table = pa.table(
        {
            "month": month_of(summary),
            "borough": summary["crash_borough"],
            **{name: summary[name] for name in MONTHLY_FIGURES},
        }
    )
    grouped = table.group_by(["month", "borough"], use_threads=False).aggregate(
        [(name, "sum") for name in MONTHLY_FIGURES]
    )
    grouped = grouped.sort_by([("month", "ascending"), ("borough", "ascending")])
    return [
        {
            "month": row["month"],
            "borough": row["borough"],
            **{name: row[f"{name}_sum"] for name in MONTHLY_FIGURES},
        }
        for row in grouped.to_pylist()
    ]


def map_months(through: date) -> list[str]:
    """The 12 calendar months ending with the month of `through`, as YYYY-MM."""
    months, first = [], through.replace(day=1)
    for _ in range(MAP_MONTHS):
        months.append(f"{first:%Y-%m}")
        first = (first - timedelta(days=1)).replace(day=1)
    return sorted(months)


def ksi_points(crashes: pa.Table) -> list[dict[str, Any]]:
    """Every located crash with ksi > 0 in `crashes` (processed crashes, POINT_COLUMNS)."""
    located = pc.and_(pc.is_valid(crashes["latitude"]), pc.is_valid(crashes["longitude"]))
    chosen = crashes.filter(pc.and_(pc.greater(pc.fill_null(crashes["ksi"], 0), 0), located))
    chosen = chosen.sort_by([("crash_date", "ascending"), ("collision_id", "ascending")])
    return [
        {
            "collision_id": row["collision_id"],
            "crash_date": row["crash_date"].isoformat(),
            "borough": row["crash_borough"],
            "latitude": row["latitude"],
            "longitude": row["longitude"],
        }
        for row in chosen.to_pylist()
    ]


def top_names(crashes: pa.Table, column: str) -> list[dict[str, Any]]:
    """The TOP names of a list column among crashes with ksi > 0, each crash counted once per
    name; ties in alphabetical order."""
    lists = crashes.filter(pc.greater(pc.fill_null(crashes["ksi"], 0), 0))[column]
    # The lists hold distinct names, so a name's count is its crashes.
    names = pc.list_flatten(lists.combine_chunks())
    counts = pc.value_counts(names).to_pylist() if len(names) else []
    rows = [(c["values"], c["counts"]) for c in counts if c["values"]]
    rows.sort(key=lambda row: (-row[1], row[0]))
    return [{"name": name, "crashes": count} for name, count in rows[:TOP]]


def dashboard_data(summary: pa.Table, recent: pa.Table, lists: pa.Table) -> dict[str, Any]:
    """The page's JSON object: `summary` (the summary tier), `recent` (processed crashes of the
    map's months, POINT_COLUMNS) and `lists` (processed crashes, LIST_COLUMNS)."""
    through = max(summary["crash_date"].to_pylist()) if summary.num_rows else None
    return {
        "through": through.isoformat() if through else None,
        "monthly": monthly(summary),
        "ksi_crashes": ksi_points(recent),
        "top_factors_ksi": top_names(lists, "contributing_factors"),
        "top_vehicle_classes_ksi": top_names(lists, "vehicle_categories"),
    }


def latest_full_month(through: date) -> str:
    """The month of `through` if `through` is its last day, else the month before."""
    if (through + timedelta(days=1)).day == 1:
        return f"{through:%Y-%m}"
    return f"{through.replace(day=1) - timedelta(days=1):%Y-%m}"


def headline_table(data: dict[str, Any]) -> str:
    """Crashes and KSI by borough: the latest full month, the month before, and a year earlier,
    as Markdown for the materialization's metadata."""
    if not data["through"]:
        return "No crash in the lake yet."
    latest = latest_full_month(date.fromisoformat(data["through"]))
    year, month = map(int, latest.split("-"))
    before = f"{year - (month == 1)}-{12 if month == 1 else month - 1:02d}"
    year_earlier = f"{year - 1}-{month:02d}"
    columns = [latest, before, year_earlier]
    figures: dict[tuple[str, str], dict[str, int]] = {
        (row["month"], row["borough"] or "unknown"): row for row in data["monthly"]
    }
    boroughs = sorted({b for m, b in figures if m in columns})
    lines = [
        "| borough | " + " | ".join(f"{m} crashes / KSI" for m in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    for borough in boroughs:
        cells = []
        for month_key in columns:
            row = figures.get((month_key, borough))
            cells.append(f"{row['crashes']:,} / {row['ksi']:,}" if row else "0 / 0")
        lines.append(f"| {borough} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
