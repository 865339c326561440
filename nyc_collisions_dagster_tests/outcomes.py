"""What runs must produce, computed from the source rows in plain Python; how they failed; the
runs a sensor asks for, and carrying them out."""

import json
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.raw.schema import SCHEMAS
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests import answers
from nyc_collisions_dagster_tests.soda_fake.generator import FIELDS, Row
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer

_PARSE = {pa.int64(): int, pa.float64(): float, pa.date32(): lambda v: date.fromisoformat(v[:10])}
# The range most run-level tests land: the first five days the test server's rows cover.
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(5)]
FIVE_DAYS = {
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-01-05",
}


def typed_rows(asset: str, rows: Iterable[Row], day: date) -> list[dict[str, object]]:
    """The source rows whose crash_date is `day`, typed as the contract says, sorted by key."""
    names = FIELDS[asset]
    date_at, wanted = names.index("crash_date"), day.isoformat()
    # (position in the row or None, name, parser) per contract field; the oracle of most tests,
    # so it reads only the rows of `day`.
    columns = [
        (names.index(f.name) if f.name in names else None, f.name, _PARSE.get(f.type, str))
        for f in SCHEMAS[asset]
    ]
    out = [
        {
            name: None if at is None or at >= len(row) or row[at] is None else parse(row[at])
            for at, name, parse in columns
        }
        for row in rows
        if str(row[date_at]).startswith(wanted)
    ]
    return sorted(out, key=lambda r: r[DATASETS[asset].unique_key])


def file_rows(path: str, filesystem: object | None = None) -> list[dict[str, object]]:
    return pq.read_table(path, filesystem=filesystem).to_pylist()


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The step failure as the UI shows it: Dagster's wrapper, then its causes."""
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


NEW_YORK = ZoneInfo("America/New_York")
_CLOCK = re.compile(r"\s*(\d{1,2}):(\d\d)\s*")


def processed_rows(
    asset: str, rows: dict[str, list[Row]], days: Iterable[date]
) -> list[dict[str, object]]:
    """The processed rows of `days`, from the source rows in plain Python: the oracle for the
    Arrow transforms."""
    out = [r for day in days for r in typed_rows(asset, rows[asset], day)]
    if asset == "crashes":
        people = _by_crash(rows, days, "persons")
        vehicles = _by_crash(rows, days, "vehicles")
    else:
        places: dict[int, dict[str, object]] = {}
        for crash in (r for day in days for r in typed_rows("crashes", rows["crashes"], day)):
            place = {k: crash[k] for k in ("borough", "zip_code")}
            place["crash_borough"] = answers.crash_borough(crash)[0]
            places.setdefault(crash["collision_id"], place)
    for row in out:
        row.update(_time_columns(row["crash_date"], row["crash_time"]))
        if asset != "crashes":
            empty = {"borough": None, "zip_code": None, "crash_borough": None}
            row.update(places.get(row["collision_id"], empty))
            for name in ("contributing_factor_1", "contributing_factor_2"):
                row[name] = answers.factor(row[name])
        if asset == "persons":
            if row["person_age"] is not None and not 0 <= row["person_age"] <= 120:
                row["person_age"] = None
            row["injury_severity"] = answers.severity(row)
        if asset == "vehicles":
            row["vehicle_category"] = answers.vehicle_category(row["vehicle_type"])
        if asset == "crashes":
            if not _in_nyc(row["latitude"], row["longitude"]):
                row["latitude"] = row["longitude"] = None
            injured = people.get(row["collision_id"], [])
            severities = [answers.severity(person) for person in injured]
            row["person_count"] = len(injured)
            row["persons_injured"] = [p["person_injury"] for p in injured].count("Injured")
            row["persons_killed"] = severities.count("K")
            row["persons_seriously_injured"] = severities.count("A")
            row["ksi"] = severities.count("K") + severities.count("A")
            row["vehicle_count"] = len(vehicles.get(row["collision_id"], []))
            factors = [answers.factor(row[f"contributing_factor_vehicle_{i}"]) for i in range(1, 6)]
            row["contributing_factors"] = list(dict.fromkeys(f for f in factors if f))
            types = ["vehicle_type_code1", "vehicle_type_code2"] + [
                f"vehicle_type_code_{i}" for i in range(3, 6)
            ]
            row["vehicle_types"] = [row[t] for t in types if row[t] and row[t].strip()]
            row["vehicle_categories"] = [answers.vehicle_category(t) for t in row["vehicle_types"]]
            row["crash_borough"], row["crash_borough_source"] = answers.crash_borough(row)
    return out


def _time_columns(day: date, text: str | None) -> dict[str, object]:
    match = _CLOCK.fullmatch(text or "")
    when = None
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        # fold=0 reads a skipped time on the clock before the change and takes the first of a
        # repeated one; astimezone normalises it to the instant it names.
        naive = datetime(day.year, day.month, day.day, int(match[1]), int(match[2]))
        when = naive.replace(tzinfo=NEW_YORK).astimezone(timezone.utc).astimezone(NEW_YORK)
    return {
        "crash_datetime": when,
        "crash_year": day.year,
        "crash_month": day.month,
        "crash_day": day.day,
        "crash_hour": when.hour if when else None,
        "crash_minute": when.minute if when else None,
    }


def _in_nyc(latitude: float | None, longitude: float | None) -> bool:
    return (
        latitude is not None
        and longitude is not None
        and 40.477399 <= latitude <= 40.917577
        and -74.259090 <= longitude <= -73.700272
    )


def _by_crash(rows: dict[str, list[Row]], days: Iterable[date], asset: str) -> dict[int, list]:
    found: dict[int, list] = {}
    for day in days:
        for row in typed_rows(asset, rows[asset], day):
            found.setdefault(row["collision_id"], []).append(row)
    return found


def requested(result: dg.SensorResult) -> set[tuple[str, str, str]]:
    """(asset, first day, last day) of each run a sensor requested, per asset."""
    out = set()
    for request in result.run_requests:
        start = request.partition_key or request.tags["dagster/asset_partition_range_start"]
        end = request.partition_key or request.tags["dagster/asset_partition_range_end"]
        for key in request.asset_selection:
            out.add((key.to_user_string(), start, end))
    return out


def raw_resources(server: SodaServer, lake: Path, **socrata: Any) -> dict[str, object]:
    """The raw layer's resources: `server` in (with `socrata` settings), `lake` out."""
    return {
        "socrata": SocrataResource(domain=server.url, **socrata),
        "io_manager": ParquetIOManager(storage_url=str(lake)),
    }


def run_requested(
    result: dg.SensorResult,
    resources: dict[str, object],
    instance: dg.DagsterInstance | None = None,
) -> None:
    """Carry out a sensor's run requests in process, as the daemon would launch them."""
    assets = {a.key.to_user_string(): a for a in collision_assets}
    for request in result.run_requests:
        selected = [assets[k.to_user_string()] for k in request.asset_selection]
        if request.partition_key:
            partition = {"partition_key": request.partition_key}
        else:
            partition = {"tags": dict(request.tags)}
        assert dg.materialize(selected, resources=resources, instance=instance, **partition).success


def dashboard_page_data(page: str) -> dict[str, Any]:
    """The JSON object a dashboard page embeds for its charts."""
    found = re.search(
        r'<script type="application/json" id="dashboard-data">(.*?)</script>', page, re.S
    )
    assert found, "the page embeds no data"
    return json.loads(found.group(1))


def monthly_from_crashes(processed_root: Path) -> dict[tuple[str, str | None], list[int]]:
    """Crashes, injured, killed and KSI by month and crash_borough, by DuckDB over the processed
    crashes files under `processed_root`: what the dashboard's `monthly` must hold."""
    files = f"{processed_root}/crashes/*/*/*.parquet"
    rows = duckdb.execute(
        "SELECT strftime(crash_date, '%Y-%m'), crash_borough, count(*), "
        "coalesce(sum(number_of_persons_injured), 0), coalesce(sum(number_of_persons_killed), 0), "
        f"coalesce(sum(ksi), 0) FROM read_parquet('{files}') GROUP BY ALL"
    ).fetchall()
    return {(row[0], row[1]): list(row[2:]) for row in rows}


def monthly_on_page(page: str) -> dict[tuple[str, str | None], list[int]]:
    """The same figures as a dashboard page embeds them."""
    return {
        (r["month"], r["borough"]): [r["crashes"], r["injured"], r["killed"], r["ksi"]]
        for r in dashboard_page_data(page)["monthly"]
    }
