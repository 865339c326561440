"""A run's progress: a live display on a terminal, plain lines elsewhere, right counts in both."""

import io
import re

import pytest

from nyc_collisions_dagster.cli import progress as progress_module
from nyc_collisions_dagster.cli.progress import RunProgress

DAYS = [f"2024-02-{day:02d}" for day in range(1, 30)]


def test_plain_lines_when_an_asset_finishes_and_every_ten_seconds_if_it_moved(monkeypatch) -> None:
    clock = iter(float(t) for t in range(0, 1000, 1))
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    with RunProgress(["crashes", "persons"], len(DAYS), "days", out, terminal=False) as shown:
        for day in DAYS[:10]:
            shown.landed("crashes", day, 7, f"lake/crashes/{day}.parquet")
        assert out.getvalue() == ""
        for _ in range(12):
            shown.tick()
        [crashes, persons] = out.getvalue().splitlines()
        assert crashes.split()[:5] == ["crashes", "10/29", "days", "70", "rows"]
        assert "at 2024-02-10" in crashes and "left" in crashes
        assert persons.split() == ["persons", "0/29", "days"]  # no rows known yet
        for _ in range(30):  # nothing landed meanwhile: nothing more to say
            shown.tick()
        assert len(out.getvalue().splitlines()) == 2
        for day in DAYS[10:] + DAYS[:3]:  # landed twice: counted once
            shown.landed("crashes", day, 7, f"lake/crashes/{day}.parquet")
        done = out.getvalue().splitlines()[-1]
        assert done.split()[:5] == ["crashes", "29/29", "days", "203", "rows"]
        assert "done in" in done
    crashes_progress = shown.assets["crashes"]
    assert (crashes_progress.rows, crashes_progress.newest) == (203, "2024-02-29")
    assert crashes_progress.path == "lake/crashes/2024-02-29.parquet"


@pytest.mark.parametrize("landed", [0, 12, 29])
def test_the_live_display_shows_days_rows_and_the_newest_day(landed: int, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # a terminal as wide as a person's
    out = io.StringIO()
    with RunProgress(["vehicles"], len(DAYS), "days", out, terminal=True) as shown:
        for day in DAYS[:landed]:
            shown.landed("vehicles", day, 1000, "")
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # without colours
    assert f"{landed}/29 days" in screen
    assert (f"{landed * 1000:,} rows" in screen) == (landed > 0)
    assert (f"at {DAYS[landed - 1]}" in screen) == (landed > 0)
