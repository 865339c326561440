"""The README's first command, `make run`, lands a month raw and processed and queries it."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq


def test_make_run_lands_a_month_raw_and_processed_then_queries_it(month_server, tmp_path) -> None:
    """The README's first command, on a month of the test server instead of the live API."""
    venv = Path(sys.executable).parent.parent
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    env = {
        **os.environ,
        "SOCRATA_DOMAIN": month_server.url,
        "COLLISIONS_STORAGE_URL": str(raw),
        "COLLISIONS_PROCESSED_URL": str(processed),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    # -o: the suite's virtualenv is installed already; make must not reinstall it.
    run = subprocess.run(
        ["make", "--no-print-directory", "-C", str(Path(__file__).resolve().parents[2]), "run",
         "MONTH=2024-02", f"VENV={venv}", "-o", f"{venv}/bin/.installed"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("crashes", "persons", "vehicles"):
        days = sorted(p.name for p in (raw / name).glob("*.parquet"))
        assert days == [f"2024-02-{day:02d}.parquet" for day in range(1, 30)]
        month = processed / name / "year=2024" / "month=02" / "2024-02.parquet"
        landed = sum(pq.read_metadata(raw / name / day).num_rows for day in days)
        assert pq.read_metadata(month).num_rows == landed > 0
    crashes = pq.read_table(processed / "crashes" / "year=2024" / "month=02" / "2024-02.parquet")
    # The query groups by crash_borough: every borough, its crashes counted with those it holds.
    boroughs = set(crashes["crash_borough"].to_pylist()) - {None}
    assert boroughs == {"BRONX", "BROOKLYN", "MANHATTAN", "QUEENS", "STATEN ISLAND"}
    for borough in boroughs:
        rows = crashes["crash_borough"].to_pylist().count(borough)
        assert rows > crashes["borough"].to_pylist().count(borough)
        assert any(
            borough in line and f" {rows} " in f" {line} " for line in run.stdout.splitlines()
        ), run.stdout
