"""The production topology runs on one machine: backfills, a schedule tick, the pool limit across
runs, and a run killed mid-way, all through the webserver's GraphQL API."""

import os
import signal
import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pyarrow.fs as pa_fs
import pytest

from nyc_collisions_dagster.constants import DATASETS, POOL, TIMEZONE
from nyc_collisions_dagster_tests.outcomes import file_rows, typed_rows
from nyc_collisions_dagster_tests.soda_fake.generator import Row
from nyc_collisions_dagster_tests.soda_fake.processes import process_tree
from nyc_collisions_dagster_tests.topology import Topology
from nyc_collisions_dagster_tests.ui_api import FINISHED, RUN_ENDED, Webserver

ASSETS = list(DATASETS)
JOB = "daily_update_job"
BACKFILLS = [[f"2024-01-0{day}" for day in days] for days in ((1, 2, 3, 4, 5), (6, 7, 8))]
KILLED_DAY = "2024-01-09"
# The schedule's tick on the morning of 11 January lands the day before.
TICK = datetime(2024, 1, 11, 9, 0, tzinfo=ZoneInfo(TIMEZONE))
TICK_DAY = "2024-01-10"
PERSONS_DATASET = DATASETS["persons"].dataset_id
SLOTS = 2


class Gate:
    """Holds every request for persons until released: a run stopped mid-way, for certain."""

    def __init__(self) -> None:
        self.arrived, self.released = threading.Event(), threading.Event()

    def __call__(self, path: str, params: dict[str, str]) -> None:
        if PERSONS_DATASET in path and not self.released.is_set():
            self.arrived.set()
            self.released.wait(timeout=120)


def _schedule_tick_run(web: Webserver) -> str:
    """Evaluate the daily schedule at TICK and launch its run request, as the UI does."""
    [request] = web.evaluate_schedule("daily_update_schedule", TICK.timestamp())
    assert {"key": "dagster/partition", "value": TICK_DAY} in request["tags"]
    [run_id] = web.launch_run_requests([request])
    return run_id


def _most_at_once(steps: list[tuple[float, float, str]]) -> int:
    """The most steps in progress at any moment; a step that ends as another starts is not."""
    changes = sorted([(end, -1) for _, end, _ in steps] + [(start, 1) for start, _, _ in steps])
    running = most = 0
    for _, change in changes:
        running += change
        most = max(most, running)
    return most


def _socrata_steps(web: Webserver, run_ids: list[str]) -> list[tuple[float, float, str]]:
    """(start, end, run:step) of every step that read Socrata; a killed step ends with its run."""
    steps = []
    for run_id in run_ids:
        run = web.run(run_id)
        for step in run["stepStats"]:
            if step["stepKey"] in ASSETS and step["startTime"]:
                end = step["endTime"] or run["endTime"]
                steps.append((step["startTime"], end, f"{run_id[:8]}:{step['stepKey']}"))
    return steps


def _lake_is_exact(storage_url: str, soda_rows: dict[str, list[Row]], days: list[str]) -> None:
    fs, root = pa_fs.FileSystem.from_uri(storage_url)
    for asset in ASSETS:
        listed = fs.get_file_info(pa_fs.FileSelector(f"{root}/{asset}"))
        assert sorted(info.base_name for info in listed) == [f"{day}.parquet" for day in days]
        for day in days:
            expected = typed_rows(asset, soda_rows[asset], date.fromisoformat(day))
            assert file_rows(f"{root}/{asset}/{day}.parquet", fs) == expected, (asset, day)


@pytest.mark.deploy
def test_production_topology_on_one_machine(
    production_topology: Topology,
    make_soda_server,
    soda_rows: dict[str, list[Row]],
    s3_storage: str,
) -> None:
    topology, web = production_topology, production_topology.webserver
    web.wait_until_loaded(timeout=90, alive=topology.assert_running)
    # Two Socrata slots, set live as an operator would, for three steps a run.
    web.set_pool_limit(POOL, SLOTS)

    # The backfills are asked for before the daemon starts: its first backfill loop, which runs
    # at once, takes both instead of waiting 30 s for the next one. Their runs come first.
    backfills = [web.launch_backfill(ASSETS, days) for days in BACKFILLS]
    topology.start_daemon()
    topology.wait_for(lambda: all(web.backfill_runs(b) for b in backfills), 60, "backfill runs")
    gate = Gate()
    gated = make_soda_server()
    gated.on_request = gate
    try:
        killed = web.launch_run(
            JOB,
            {"resources": {"socrata": {"config": {"domain": gated.url}}}},
            {"dagster/partition": KILLED_DAY},
        )
        scheduled = _schedule_tick_run(web)

        # crashes and vehicles are done and persons is fetching when the run's processes are
        # SIGKILLed, as the kernel's OOM killer or a lost machine would.
        assert gate.arrived.wait(timeout=120), topology.log_tails()
        mid_way = {"crashes": "SUCCESS", "persons": "IN_PROGRESS", "vehicles": "SUCCESS"}
        topology.wait_for(
            lambda: web.step_statuses(killed) == mid_way,
            120,
            "the killed run's other steps",
        )
        worker = web.worker_pid(killed)
        assert worker not in topology.server_pids()
        for pid in process_tree(worker):
            os.kill(pid, signal.SIGKILL)
    finally:
        gate.released.set()

    topology.wait_for(lambda: web.run(killed)["status"] in RUN_ENDED, 30, "the killed run's end")
    assert web.run(killed)["status"] == "FAILURE"
    assert any("terminated by signal 9" in e["message"] for e in web.messages(killed))
    # Its dead step still holds a slot, until run monitoring gives it back.
    assert killed in web.pool(POOL)["activeRunIds"]
    relaunched = web.reexecute_from_failure(killed)

    topology.wait_for(
        lambda: all(web.run(r)["status"] in RUN_ENDED for r in (scheduled, relaunched)),
        300,
        "the schedule's run and the relaunched run",
    )
    topology.wait_for(
        lambda: all(web.backfill_status(b) in FINISHED for b in backfills),
        180,
        "both backfills",
    )

    backfill_runs = [web.backfill_runs(b) for b in backfills]
    everything = [
        killed,
        scheduled,
        relaunched,
        *(r["runId"] for runs in backfill_runs for r in runs),
    ]
    failures = {r: web.run_errors(r) for r in everything[1:] if web.run(r)["status"] != "SUCCESS"}
    assert not failures and all(web.backfill_status(b) == "COMPLETED_SUCCESS" for b in backfills), (
        failures,
        topology.log_tails(),
    )

    # Each backfill is one run of the three assets over its range, in a process of its own.
    workers = {web.worker_pid(r) for r in everything}
    assert len(workers) == len(everything) and not workers & topology.server_pids()
    for days, [run] in zip(BACKFILLS, backfill_runs):
        assert sorted(key["path"][-1] for key in run["assetSelection"]) == sorted(ASSETS)
        assert (
            run["tags"]["dagster/asset_partition_range_start"],
            run["tags"]["dagster/asset_partition_range_end"],
        ) == (days[0], days[-1])
    assert web.run(scheduled)["tags"]["dagster/partition"] == TICK_DAY

    # The relaunch ran what the killed run had not finished, and nothing else: persons, whose
    # step evaluates its checks, the lake check included.
    assert sorted(web.step_statuses(relaunched)) == ["persons"]
    all_days = [d for days in BACKFILLS for d in days] + [KILLED_DAY, TICK_DAY]
    _lake_is_exact(s3_storage, soda_rows, all_days)

    # The pool, from the timelines: never more Socrata steps at once than slots, across runs,
    # though more were ready (the executor reported them blocked by the pool).
    steps = _socrata_steps(web, everything)
    assert len(steps) == 3 * len(everything) - 2  # the relaunch ran one step
    assert _most_at_once(steps) <= SLOTS, sorted(steps)
    blocked = [
        e
        for r in everything
        for e in web.messages(r)
        if e["message"].startswith(f"Step blocked by limit for pool {POOL}")
    ]
    assert blocked

    # Run monitoring gave the killed step's slot back: nothing holds one now.
    assert web.pool(POOL) == {
        "limit": SLOTS,
        "activeSlotCount": 0,
        "activeRunIds": [],
        "pendingStepCount": 0,
    }
