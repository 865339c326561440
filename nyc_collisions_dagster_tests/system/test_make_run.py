"""The README's first command, `make run`, lands a month raw and processed, shows its progress and
a summary, and queries it."""

import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest


# On the default transport, as the README's user runs it: SODA3 is the same client under the
# same command, tested with each asset in the integration tier.
@pytest.mark.one_transport
def test_make_run_lands_a_month_raw_and_processed_then_queries_it(
    month_server, tmp_path, run_make
) -> None:
    """The README's first command, on a month of the test server instead of the live API."""
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    home = tmp_path / "dagster_home"
    env = {
        **os.environ,
        "SOCRATA_DOMAIN": month_server.url,
        "COLLISIONS_STORAGE_URL": str(raw),
        "COLLISIONS_PROCESSED_URL": str(processed),
        "COLLISIONS_REPORTS_URL": str(tmp_path / "reports"),
        "DAGSTER_HOME": str(home),
    }
    run = run_make("run", "MONTH=2024-02", env=env)
    assert run.returncode == 0, run.text
    assert len(run.lines) < 60, run.text
    assert "Traceback" not in run.text
    # The instance got the project's config, so Dagster never warned that it had none.
    assert (home / "dagster.yaml").read_text() == Path("deploy/dagster.yaml").read_text()
    [log] = [line.split(": ", 1)[1] for line in run.lines if line.startswith("Dagster's log: ")]
    assert "Telemetry" in Path(log).read_text()  # Dagster's own output went to the file
    for name in ("crashes", "persons", "vehicles"):
        days = sorted(p.name for p in (raw / name).glob("*.parquet"))
        assert days == [f"2024-02-{day:02d}.parquet" for day in range(1, 30)]
        month = processed / name / "year=2024" / "month=02" / "2024-02.parquet"
        landed = sum(pq.read_metadata(raw / name / day).num_rows for day in days)
        assert pq.read_metadata(month).num_rows == landed > 0
        # Progress when the dataset's last day landed, then the summary's rows and folder.
        assert any(
            line.split()[:2] == [name, "29/29"] and f" {landed:,} rows" in line
            for line in run.lines
        ), run.text
        summary = [line.split() for line in run.lines if line.startswith("  ")]
        assert [name, "29", "days", f"{landed:,}", "rows", str(raw / name)] in summary
        assert [f"processed/{name}", "1", "month", f"{landed:,}", "rows", str(month)] in summary
    assert sum(line.startswith("Run ") and "succeeded" in line for line in run.lines) == 3
    # Then the summary tier, over the whole history the lake holds: this month.
    summary_file = processed / "summaries" / "summary" / "summary.parquet"
    summary = pq.read_table(summary_file)
    month = pq.read_table(processed / "crashes" / "year=2024" / "month=02" / "2024-02.parquet")
    assert sum(summary["crashes"].to_pylist()) == month.num_rows
    printed = [line.split() for line in run.lines]
    summary_line = ["processed/summary", "1", "file", f"{summary.num_rows:,}", "rows"]
    assert [*summary_line, str(summary_file)] in printed
    # And the dashboard, drawn from the same figures.
    page = tmp_path / "reports" / "dashboard.html"
    assert ["reports/dashboard", "1", "file", str(page)] in printed
    data = re.search(r'id="dashboard-data">(.*?)</script>', page.read_text(), re.S)
    assert data and sum(row["crashes"] for row in json.loads(data[1])["monthly"]) == month.num_rows
    crashes = pq.read_table(processed / "crashes" / "year=2024" / "month=02" / "2024-02.parquet")
    # The query groups by crash_borough: every borough, its crashes counted with those it holds.
    boroughs = set(crashes["crash_borough"].to_pylist()) - {None}
    assert boroughs == {"BRONX", "BROOKLYN", "MANHATTAN", "QUEENS", "STATEN ISLAND"}
    for borough in boroughs:
        rows = crashes["crash_borough"].to_pylist().count(borough)
        assert rows > crashes["borough"].to_pylist().count(borough)
        assert any(borough in line and f" {rows} " in f" {line} " for line in run.lines), run.text
