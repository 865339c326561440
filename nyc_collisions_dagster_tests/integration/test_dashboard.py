"""The dashboard embeds exactly the lake's figures, opens with no network reference, and shows
empty states for thin data."""

import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster.processed.summary_asset import summary
from nyc_collisions_dagster.reports.assets import dashboard
from nyc_collisions_dagster.resources.reports import ReportsLocation
from nyc_collisions_dagster_tests.outcomes import (
    dashboard_page_data,
    monthly_from_crashes,
    monthly_on_page,
)

pytestmark = pytest.mark.one_transport  # reads the lake only

CRASH_FILES = "{root}/crashes/*/*/*.parquet"
POINTS = (
    "SELECT collision_id FROM read_parquet('{files}') WHERE ksi > 0 AND latitude IS NOT NULL "
    "AND longitude IS NOT NULL ORDER BY crash_date, collision_id"
)
TOP = (
    "SELECT name, count(*) AS crashes FROM (SELECT unnest({column}) AS name "
    "FROM read_parquet('{files}') WHERE ksi > 0) GROUP BY name ORDER BY crashes DESC, name LIMIT 10"
)


def build(lake: Path, layer_resources, server, reports: Path) -> dg.ExecuteInProcessResult:
    resources = {
        **layer_resources(server, lake),
        "reports": ReportsLocation(storage_url=str(reports)),
    }
    result = dg.materialize([summary, dashboard], resources=resources)
    assert result.success
    return result


def test_the_page_embeds_the_lakes_figures_and_opens_offline(
    processed_months, layer_resources, month_server, tmp_path
) -> None:
    lake = Path(shutil.copytree(processed_months, tmp_path / "lake"))
    result = build(lake, layer_resources, month_server, tmp_path / "reports")
    page = (tmp_path / "reports" / "dashboard.html").read_text()
    data = dashboard_page_data(page)
    files = CRASH_FILES.format(root=lake / "collisions_processed_data")
    assert data["through"] == "2024-04-30"
    found = monthly_on_page(page)
    assert found == monthly_from_crashes(lake / "collisions_processed_data")
    assert {month for month, _ in found} == {"2024-02", "2024-03", "2024-04"}
    assert any(borough is None for _, borough in found)  # the null borough is its own group
    # The 12 months through April hold the whole lake: every located KSI crash is mapped.
    points = [p["collision_id"] for p in data["ksi_crashes"]]
    assert points == [row[0] for row in duckdb.execute(POINTS.format(files=files)).fetchall()]
    assert points and all(-74.3 < p["longitude"] < -73.6 for p in data["ksi_crashes"])
    for key, column in (
        ("top_factors_ksi", "contributing_factors"),
        ("top_vehicle_classes_ksi", "vehicle_categories"),
    ):
        top = duckdb.execute(TOP.format(column=column, files=files)).fetchall()
        assert [(t["name"], t["crashes"]) for t in data[key]] == top and top
    # Offline: the page loads nothing over the network, and its charts are drawn as SVG.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert '"renderer": "svg"' in page or 'renderer: "svg"' in page
    assert 'id="ksi-map"' in page
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "reports"
    ]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["bytes"] == len(page.encode()) < 5_000_000
    assert metadata["path"] == str(tmp_path / "reports" / "dashboard.html")
    headline = metadata["headline"]
    assert "2024-04 crashes / KSI" in headline and "2024-03 crashes / KSI" in headline
    april_bronx = found[("2024-04", "BRONX")]
    assert f"| BRONX | {april_bronx[0]:,} / {april_bronx[3]:,} |" in headline


def test_a_lake_without_ksi_or_located_crashes_gives_a_page_with_empty_states(
    processed_months, layer_resources, month_server, tmp_path
) -> None:
    lake = Path(shutil.copytree(processed_months, tmp_path / "lake"))
    for path in (lake / "collisions_processed_data" / "crashes").rglob("*.parquet"):
        table = pq.read_table(path)
        for column in ("ksi", "persons_seriously_injured", "persons_killed"):
            index = table.schema.get_field_index(column)
            table = table.set_column(index, column, pc.multiply(table[column], 0))
        for column in ("latitude", "longitude"):
            index = table.schema.get_field_index(column)
            empty = pc.if_else(pc.is_valid(table[column]), None, table[column])
            table = table.set_column(index, column, empty)
        pq.write_table(table, path)
    build(lake, layer_resources, month_server, tmp_path / "reports")
    page = (tmp_path / "reports" / "dashboard.html").read_text()
    data = dashboard_page_data(page)
    assert data["ksi_crashes"] == [] and data["top_factors_ksi"] == []
    assert data["top_vehicle_classes_ksi"] == [] and data["monthly"]
    assert "No located crash with a person killed or seriously injured" in page
