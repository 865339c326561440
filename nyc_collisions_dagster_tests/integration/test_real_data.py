"""Real NYC rows (../shared/data/socrata, when present) land in the files unchanged, day by day."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster.processed.assets import processed_tables
from nyc_collisions_dagster.processed.summary_asset import summary
from nyc_collisions_dagster.raw.assets import collision_assets, crashes
from nyc_collisions_dagster.reports.assets import dashboard
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager, ProcessedLake
from nyc_collisions_dagster.resources.reports import ReportsLocation
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.outcomes import (
    file_rows,
    monthly_from_crashes,
    monthly_on_page,
    processed_rows,
    typed_rows,
)

pytestmark = pytest.mark.real_data

LINKED_COUNTS = {  # SOURCES.md §1
    "crashes": [246, 253, 237, 219, 249],
    "persons": [892, 815, 873, 763, 855],
    "vehicles": [542, 496, 452, 442, 499],
}


def _materialize(assets, server, storage: Path, start: str, end: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={
            "socrata": SocrataResource(domain=server.url),
            "io_manager": ParquetIOManager(storage_url=str(storage)),
            "processed_lake": ProcessedLake(storage_url=str(storage / "processed")),
        },
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
    )


def test_linked_days_of_all_three_datasets(make_soda_server, soda_real_rows, tmp_path) -> None:
    server = make_soda_server(soda_real_rows)
    assert _materialize(collision_assets, server, tmp_path, "2024-01-01", "2024-01-05").success
    for name, counts in LINKED_COUNTS.items():
        for offset, count in enumerate(counts):
            day = date(2024, 1, 1) + timedelta(days=offset)
            rows = file_rows(str(tmp_path / name / f"{day}.parquet"))
            assert len(rows) == count
            assert rows == typed_rows(name, soda_real_rows[name], day)


def test_a_full_month_of_crashes(make_soda_server, soda_real_rows, tmp_path) -> None:
    server = make_soda_server(soda_real_rows)
    assert _materialize([crashes], server, tmp_path, "2022-01-01", "2022-01-31").success
    total = 0
    for offset in range(31):
        day = date(2022, 1, 1) + timedelta(days=offset)
        rows = file_rows(str(tmp_path / "crashes" / f"{day}.parquet"))
        assert rows == typed_rows("crashes", soda_real_rows["crashes"], day)
        total += len(rows)
    assert total == 7_659


def test_real_months_processed(make_soda_server, soda_real_rows, tmp_path) -> None:
    """January 2024 (five linked days, the rest empty) and January 2022 (crashes only): every row
    as the plain-Python rules give it, and the 2022 month warns that its crashes lack persons."""
    server = make_soda_server(soda_real_rows)
    warnings = {}
    for year in (2022, 2024):
        assert _materialize(
            collision_assets, server, tmp_path, f"{year}-01-01", f"{year}-01-31"
        ).success
        result = _materialize([processed_tables], server, tmp_path, f"{year}-01", f"{year}-01")
        [warnings[year]] = [
            e
            for e in result.get_asset_check_evaluations()
            if e.check_name == "crashes_have_persons"
        ]
    days = {
        year: [date(year, 1, 1) + timedelta(days=i) for i in range(31)] for year in (2022, 2024)
    }
    for name in ("crashes", "persons", "vehicles"):
        for year, month_days in days.items():
            path = (
                tmp_path / "processed" / name / f"year={year}" / "month=01" / f"{year}-01.parquet"
            )
            rows = pq.read_table(path).to_pylist()
            assert rows == processed_rows(name, soda_real_rows, month_days)
    crashes_2024 = pq.read_table(tmp_path / "processed" / "crashes" / "year=2024" / "month=01")
    assert sum(crashes_2024["person_count"].to_pylist()) == sum(LINKED_COUNTS["persons"])
    assert not warnings[2022].passed and "2022-01" in warnings[2022].description
    assert warnings[2024].passed  # 6 of the 1,204 crashes have no persons rows
    # The summary and the dashboard over both real months: the page's figures are the crashes'.
    reports = ReportsLocation(storage_url=str(tmp_path / "reports"))
    lake = ProcessedLake(storage_url=str(tmp_path / "processed"))
    resources = {"processed_lake": lake, "reports": reports}
    assert dg.materialize([summary, dashboard], resources=resources).success
    page = (tmp_path / "reports" / "dashboard.html").read_text()
    found = monthly_on_page(page)
    assert found == monthly_from_crashes(tmp_path / "processed")
    assert {month for month, _ in found} == {"2022-01", "2024-01"}
