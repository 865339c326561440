"""`make run` and `make backfill` fail as a tool should: at most 20 lines, no traceback, a non-zero
exit, and a last line that names the cause and the setting or argument to fix."""

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from nyc_collisions_dagster_tests.soda_fake.generator import generate
from nyc_collisions_dagster_tests.soda_fake.processes import free_port
from nyc_collisions_dagster_tests.system.conftest import MakeRun


def _env(tmp_path: Path, domain: str, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "SOCRATA_DOMAIN": domain,
        "COLLISIONS_STORAGE_URL": str(tmp_path / "raw"),
        "COLLISIONS_PROCESSED_URL": str(tmp_path / "processed"),
        "COLLISIONS_REPORTS_URL": str(tmp_path / "reports"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        **settings,
    }


def _assert_one_clear_line(run: MakeRun, *words: str) -> None:
    assert run.returncode != 0, run.text
    assert len(run.lines) <= 20, run.text
    assert "Traceback" not in run.text
    last = run.own_lines[-1]
    for word in words:
        assert word in last, run.text


@pytest.mark.one_transport  # refused before Dagster starts
@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["run", "MONTH=2025-13"], ["MONTH='2025-13' is not a month", "YYYY-MM"]),
        (["run", "MONTH=last month"], ["MONTH='last month' is not a month"]),
        (["run", "MONTH=2012-06"], ["MONTH=2012-06 is before the data starts", "2012-07"]),
        (["run", "MONTH=2999-01"], ["MONTH=2999-01 is in the future"]),
        (["run", "PARTITION=2025-02-30"], ["PARTITION=2025-02-30 is not a day of the calendar"]),
        (["run", "PARTITION=2012-06-30"], ["PARTITION=2012-06-30 is before the data starts"]),
        (["run", "PARTITION=2999-01-01"], ["PARTITION=2999-01-01 is in the future"]),
        (["backfill", "FROM=2024-03-01", "TO=2024-02-01"], ["FROM=2024-03-01 is after TO"]),
        (["backfill", "FROM=2024-01-01", "TO=2024-01-02", "ASSETS=crash"], ["ASSETS=crash"]),
    ],
)
def test_a_wrong_argument_is_one_line(
    arguments: list[str], words: list[str], tmp_path: Path, run_make: Callable[..., MakeRun]
) -> None:
    run = run_make(*arguments, env=_env(tmp_path, "http://127.0.0.1:1"))
    _assert_one_clear_line(run, *words)
    assert run.returncode == 2
    assert len(run.own_lines) == 1, run.text
    assert not (tmp_path / "raw").exists()


@pytest.mark.one_transport  # never reaches a server
def test_an_api_that_cannot_be_reached_is_one_line(
    tmp_path: Path, run_make: Callable[..., MakeRun]
) -> None:
    domain = f"http://127.0.0.1:{free_port()}"  # a closed port
    run = run_make("run", "PARTITION=2024-02-01", env=_env(tmp_path, domain))
    _assert_one_clear_line(run, "cannot be reached", "refuses connections", "SOCRATA_DOMAIN")
    # The failed run is an ordinary Dagster run, and its full log is in the file named.
    [log] = [line.split(": ", 1)[1] for line in run.lines if line.startswith("Dagster's log: ")]
    assert "SocrataError" in Path(log).read_text()


@pytest.mark.one_transport  # the token is the point: the server refuses it on either transport
def test_a_refused_token_is_one_line(
    tmp_path: Path, run_make: Callable[..., MakeRun], make_soda_server
) -> None:
    server = make_soda_server(app_tokens={"the-right-token"})
    env = _env(tmp_path, server.url, SOCRATA_APP_TOKEN="a-wrong-token")
    run = run_make("run", "PARTITION=2024-01-02", env=env)
    _assert_one_clear_line(run, "HTTP 403", "SOCRATA_APP_TOKEN")
    assert "a-wrong-token" not in run.text


@pytest.mark.one_transport  # refused before any request
def test_a_missing_bucket_is_one_line(
    tmp_path: Path, run_make: Callable[..., MakeRun], aws_env: dict[str, str], soda_server
) -> None:
    env = _env(tmp_path, soda_server.url, **aws_env)
    env["COLLISIONS_STORAGE_URL"] = "s3://no-such-bucket/collisions_raw_data"
    run = run_make("backfill", "FROM=2024-01-01", "TO=2024-01-03", env=env)
    _assert_one_clear_line(
        run, "S3 bucket 'no-such-bucket' does not exist", "COLLISIONS_STORAGE_URL"
    )


@pytest.mark.one_transport  # the disk is under test
def test_a_full_disk_is_one_line_naming_the_path(
    tmp_path: Path, run_make: Callable[..., MakeRun], make_soda_server, small_disk: Path
) -> None:
    server = make_soda_server(
        rows=generate(date(2024, 1, 1), date(2024, 3, 1), crashes_per_day=(20, 40))
    )
    env = _env(tmp_path, server.url, COLLISIONS_STORAGE_URL=str(small_disk / "raw"))
    run = run_make("backfill", "FROM=2024-01-01", "TO=2024-02-29", "ASSETS=crashes", env=env)
    _assert_one_clear_line(run, f"Could not write {small_disk}/raw/crashes/", "No space left")
