"""A deploy restarts dagster-daemon around the daily schedule's tick and in the middle of the
late-records sensor's evaluation, on the production topology (PostgreSQL): the tick runs once, no
day is missed or fetched twice, and the sensor's cursor never goes back. The evidence is the
schedule's and the sensor's own tick history in the instance, as their pages in the UI list it.

Each daemon lives at a moment of the test's choosing, through libfaketime (clock.py): just before
the tick, an hour after it, and an hour after that, the sensor's minimum interval.
"""

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nyc_collisions_dagster.constants import DATASETS, TIMEZONE
from nyc_collisions_dagster_tests.clock import clock_at
from nyc_collisions_dagster_tests.range_runs import assert_lake_exact
from nyc_collisions_dagster_tests.soda_fake.generator import Row, crash_date, generate, to_api_dict
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer
from nyc_collisions_dagster_tests.topology import Topology, started_topology
from nyc_collisions_dagster_tests.ui_api import RUN_ENDED, Webserver

SCHEDULE, SENSOR = "daily_update_schedule", "late_records_sensor"
HOUR = timedelta(hours=1)
LAUNCHED = {"STARTING", "STARTED", *RUN_ENDED}


def next_tick(after: datetime) -> datetime:
    """The daily schedule's first tick after `after`: 09:00 in New York."""
    tick = after.astimezone(ZoneInfo(TIMEZONE)).replace(hour=9, minute=0, second=0, microsecond=0)
    return tick if tick > after else tick + timedelta(days=1)


class Gate:
    """Once armed, holds every request for changes (`:updated_at >`) until released: a sensor
    caught mid-evaluation, for certain."""

    def __init__(self) -> None:
        self.armed, self.arrived, self.released = (threading.Event() for _ in range(3))

    def __call__(self, path: str, params: dict[str, str]) -> None:
        if self.armed.is_set() and ":updated_at >" in params.get("$where", ""):
            self.arrived.set()
            self.released.wait(timeout=120)


@pytest.fixture
def tick() -> datetime:
    # Far enough ahead that the topology is up before its clock reaches the tick.
    return next_tick(datetime.now(timezone.utc) + timedelta(minutes=10))


@pytest.fixture
def rows(tick: datetime) -> dict[str, list[Row]]:
    """The four days up to the one the tick lands."""
    landed = tick.date() - timedelta(days=1)
    return generate(
        landed - timedelta(days=3), landed + timedelta(days=1), crashes_per_day=(20, 40)
    )


@pytest.fixture
def deployed(
    tick: datetime,
    rows: dict[str, list[Row]],
    make_soda_server,
    postgres_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[tuple[Topology, SodaServer, Gate, str]]:
    """The code server and the webserver, their clocks five minutes before the tick."""
    server, gate = make_soda_server(rows), Gate()
    server.on_request = gate
    lake = str(tmp_path / "lake")
    settings = {**postgres_env, **clock_at(tick - timedelta(minutes=5))}
    try:
        with started_topology(server.url, settings, lake, tmp_path) as topology:
            topology.webserver.wait_until_loaded(timeout=90, alive=topology.assert_running)
            yield topology, server, gate, lake
    finally:
        gate.released.set()


def _cursor(tick: dict) -> dict[str, str]:
    return json.loads(tick["cursor"]) if tick["cursor"] else {}


def _ended(ticks: list[dict]) -> list[dict] | None:
    return ticks if ticks and ticks[-1]["status"] != "STARTED" else None


def _runs(web: Webserver, tags: dict[str, str], statuses: set[str]) -> list[dict] | None:
    """The runs with `tags`, once there are some and each has one of `statuses`."""
    runs = web.runs_tagged(tags)
    return runs if runs and all(r["status"] in statuses for r in runs) else None


@pytest.mark.deploy
def test_a_daemon_restarted_around_the_tick_and_mid_evaluation_loses_and_doubles_nothing(
    deployed: tuple[Topology, SodaServer, Gate, str], tick: datetime
) -> None:
    topology, server, gate, lake = deployed
    web = topology.webserver
    landed = tick.date() - timedelta(days=1)
    web.start_schedule(SCHEDULE)
    web.start_sensor(SENSOR)

    # Before the tick: the sensor's first tick starts watching Socrata from its latest change.
    topology.start_daemon()
    [watching] = topology.wait_for(lambda: _ended(web.ticks(SENSOR)), 90, "the sensor's first tick")
    assert watching["status"] == "SKIPPED" and set(_cursor(watching)) == set(DATASETS)
    topology.stop_daemon()
    assert web.ticks(SCHEDULE) == [], "the daemon was stopped after the tick, not before"

    # While it is down, Socrata amends a crash of three days before.
    amended_day = landed - timedelta(days=2)
    row = next(
        r for r in server.rows("crashes") if crash_date("crashes", r).startswith(str(amended_day))
    )
    crash = to_api_dict("crashes", row)
    server.upsert("crashes", [crash | {"on_street_name": "AMENDED AVENUE"}])

    # Back an hour after the tick: the tick it missed runs once, for the day before it; the
    # sensor's evaluation is caught mid-way, and the daemon is stopped again.
    gate.armed.set()
    topology.start_daemon(clock_at(tick + HOUR))
    assert gate.arrived.wait(timeout=90), topology.log_tails()
    # Stopped once the tick's run is launched, well within the evaluation's 60 s time limit.
    topology.wait_for(
        lambda: _runs(web, {"dagster/schedule_name": SCHEDULE}, LAUNCHED), 45, "the tick's run"
    )
    # It does not stop while the evaluation waits on the code server: the deploy's SIGKILL
    # after a grace period ends it.
    topology.stop_daemon(grace=5)
    gate.released.set()
    [scheduled] = topology.wait_for(
        lambda: _runs(web, {"dagster/schedule_name": SCHEDULE}, RUN_ENDED),
        120,
        "the tick's run's end",
    )

    # An hour later again, the sensor's minimum interval: the interrupted tick is left, and the
    # next evaluation starts from the cursor before it.
    topology.start_daemon(clock_at(tick + 2 * HOUR + timedelta(minutes=5)))
    fetched = topology.wait_for(
        lambda: _runs(web, {"dagster/sensor_name": SENSOR}, RUN_ENDED), 120, "the sensor's run"
    )
    topology.stop_daemon()

    # The schedule: one tick, at 09:00, one run, of the day before, which succeeded.
    [schedule_tick] = web.ticks(SCHEDULE)
    assert schedule_tick["status"] == "SUCCESS", schedule_tick
    assert schedule_tick["timestamp"] == tick.timestamp()
    assert schedule_tick["runIds"] == [scheduled["runId"]]
    assert web.runs_tagged({"dagster/schedule_name": SCHEDULE}) == [scheduled]
    assert scheduled["status"] == "SUCCESS"
    assert scheduled["tags"]["dagster/partition"] == str(landed)

    # The sensor: watching, the interrupted evaluation (no cursor), then one that fetched the
    # amended day; its cursor moved forward only.
    first, interrupted, evaluated = web.ticks(SENSOR)
    assert interrupted["status"] == "SKIPPED" and interrupted["cursor"] is None, interrupted
    assert evaluated["status"] == "SUCCESS", evaluated
    before, after = _cursor(first), _cursor(evaluated)
    assert all(after[name] >= before[name] for name in DATASETS)
    assert after["crashes"] > before["crashes"]
    [run] = fetched
    assert evaluated["runIds"] == [run["runId"]] and run["status"] == "SUCCESS"
    assert run["tags"]["dagster/partition"] == str(amended_day)

    # The lake: the tick's day of every dataset and the amended day of crashes, each exactly as
    # the source has it now.
    source = {asset: server.rows(asset) for asset in DATASETS}
    assert_lake_exact(lake, source, True, [amended_day, landed], ["crashes"])
    assert_lake_exact(lake, source, True, [landed], ["persons", "vehicles"])
