"""A run killed with SIGKILL mid-range loses nothing: whatever a reader sees in the lake is whole
and exact, every recorded day has its file, and `make backfill` over the range again fails the
killed run, frees its pool slots and ends exact, with no duplicate rows."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from nyc_collisions_dagster.constants import DATASETS, POOL
from nyc_collisions_dagster.instance.orphans import fail_orphans
from nyc_collisions_dagster.raw.days import contiguous_ranges, days_between
from nyc_collisions_dagster_tests.range_runs import (
    DAYS,
    LATENCY,
    REPO_ROOT,
    SLOW,
    LakeReader,
    assert_lake_exact,
    materialize,
    range_rows,
    recorded,
    shell_settings,
)
from nyc_collisions_dagster_tests.soda_fake.generator import Row
from nyc_collisions_dagster_tests.soda_fake.processes import process_tree
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer
from nyc_collisions_dagster_tests.topology import started_topology
from nyc_collisions_dagster_tests.ui_api import RUN_ENDED, Webserver

KILL_AFTER_DAYS = 20  # recorded, over the three datasets


@pytest.fixture(scope="module")
def rows() -> dict[str, list[Row]]:
    return range_rows()


def kill_once_days_are_recorded(run: subprocess.Popen[str], instance: dg.DagsterInstance) -> None:
    deadline = time.monotonic() + 120
    while sum(map(len, recorded(instance).values())) < KILL_AFTER_DAYS:
        assert run.poll() is None, f"the run ended before the kill: {run.stderr.read()[-2000:]}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no days recorded in time"
        time.sleep(0.05)
    assert not fail_orphans(instance), "a running run was taken for a killed one"
    os.killpg(run.pid, signal.SIGKILL)  # no chance to clean up, flush or record anything
    run.wait()


@pytest.mark.one_transport  # the processes and the lake are under test, not the API
def test_a_cli_range_killed_by_sigkill_loses_nothing_and_make_backfill_lands_it_exactly(
    make_soda_server: Callable[..., SodaServer],
    rows: dict[str, list[Row]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_soda_server(rows=rows, latency=LATENCY)
    env = shell_settings(tmp_path, server.url, monkeypatch)
    lake = env["COLLISIONS_STORAGE_URL"]
    with dg.DagsterInstance.get() as instance:
        kill_once_days_are_recorded(materialize(env, config=SLOW), instance)

        # Whatever a reader sees is a whole day with exactly the source's rows.
        written = assert_lake_exact(lake, rows)
        done = recorded(instance)
        assert any(days < set(DAYS) for days in written.values()), "the kill came too late"
        for asset, days in done.items():
            assert days <= written[asset], f"{asset}: recorded without a file"
        # Nothing ran to notice the kill: the run stays STARTED, its pool slots taken.
        [killed] = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED
        assert _slots_held(instance, killed.run_id)

        # `make backfill` over the same range: it fails the killed run, frees its slots and
        # lands every day again at full speed.
        server.latency = 0.0
        again = subprocess.run(
            [sys.executable, "-m", "nyc_collisions_dagster.cli", "backfill"]
            + ["--from", str(DAYS[0]), "--to", str(DAYS[-1])],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
        first_line = again.stdout.splitlines()[0]
        assert f"Run {killed.run_id} died mid-way" in first_line
        assert "marked it failed and freed its" in first_line
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
        assert not _slots_held(instance, killed.run_id)
        assert_lake_exact(lake, rows, complete=True)
        assert recorded(instance) == {asset: set(DAYS) for asset in written}


def _slots_held(instance: dg.DagsterInstance, run_id: str) -> int:
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return sum(slot.run_id == run_id for slot in info.claimed_slots)


@pytest.mark.deploy
def test_production_a_killed_backfill_is_finished_by_failed_and_missing_a_doubled_one_waits(
    make_soda_server: Callable[..., SodaServer],
    rows: dict[str, list[Row]],
    aws_env: dict[str, str],
    s3_storage: str,
    postgres_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The production stack (the queue, the daemon and run monitoring on PostgreSQL, S3): a
    backfill whose run worker is killed fails, and *Failed and missing* lands only the days not
    recorded; then the same month backfilled twice at once runs one backfill after the other."""
    server = make_soda_server(rows=rows, latency=LATENCY)
    settings = {**aws_env, **postgres_env}
    with started_topology(server.url, settings, s3_storage, tmp_path) as topology:
        web = topology.webserver
        web.wait_until_loaded(timeout=90, alive=topology.assert_running)
        # Asked for before the daemon starts: its first backfill loop takes it at once.
        first = web.launch_backfill(list(DATASETS), [str(day) for day in DAYS], SLOW)
        topology.start_daemon()
        [run] = topology.wait_for(lambda: web.backfill_runs(first), 60, "the backfill's run")
        topology.wait_for(
            lambda: sum(map(len, _recorded(web).values())) >= KILL_AFTER_DAYS,
            120,
            f"{KILL_AFTER_DAYS} days recorded",
        )
        worker = web.worker_pid(run["runId"])
        assert worker not in topology.server_pids()
        for pid in process_tree(worker):  # the run worker and its steps' processes
            os.kill(pid, signal.SIGKILL)
        topology.wait_for(
            lambda: web.run(run["runId"])["status"] in RUN_ENDED, 60, "the killed run's end"
        )
        assert web.run(run["runId"])["status"] == "FAILURE"

        written = assert_lake_exact(s3_storage, rows)
        done = _recorded(web)
        assert any(days < set(DAYS) for days in written.values()), "the kill came too late"
        for asset, days in done.items():
            assert days <= written[asset], f"{asset}: recorded without a file"

        # The launch dialog's "Failed and missing": each asset's days not recorded.
        server.latency = 0.0
        server.reset_log()
        # The daemon is restarted around it only so that its first backfill loop takes it at
        # once, as it took the first: the loop's 30 s is fixed in Dagster.
        topology.stop_daemon()
        second = web.launch_backfill_of_ranges({a: _gaps(done[a]) for a in DATASETS})
        topology.start_daemon()
        # Every day shown materialized, as the asset's Partitions tab draws it: the backfill's
        # status follows a daemon loop later.
        everything = {a: set(DAYS) for a in DATASETS}
        topology.wait_for(lambda: _recorded(web) == everything, 180, "the relaunch")
        runs = [r["runId"] for r in web.backfill_runs(second)]
        topology.wait_for(
            lambda: all(web.run(r)["status"] in RUN_ENDED for r in runs), 60, "the runs' end"
        )
        failed = {r: web.run_errors(r) for r in runs if web.run(r)["status"] != "SUCCESS"}
        assert not failed, failed
        by_id = {d.dataset_id: a for a, d in DATASETS.items()}
        for request in server.requests:
            fetched = _window(request.clauses.get("$where", ""))
            assert not fetched & done[by_id[request.dataset_id]], request.clauses
        assert_lake_exact(s3_storage, rows, complete=True)
        # Run monitoring gave the dead steps' pool slots back.
        topology.wait_for(lambda: not web.pool(POOL)["activeRunIds"], 30, "the slots freed")

        # A month of crashes twice, asked for within a second, while a reader reads the lake.
        reader = LakeReader(s3_storage, rows, DAYS, ["crashes"])
        reader.start()
        topology.stop_daemon()
        month = [str(day) for day in DAYS[:30]]
        doubled = [web.launch_backfill(["crashes"], month) for _ in range(2)]
        topology.start_daemon()
        runs = topology.wait_for(lambda: _one_run_each(web, doubled), 60, "a run a backfill")
        topology.wait_for(
            lambda: all(web.run(r)["status"] in RUN_ENDED for r in runs), 240, "both runs"
        )
        reader.stop()
        assert reader.files_read, "the reader saw no file while the runs wrote"
        failed = {r: web.run_errors(r) for r in runs if web.run(r)["status"] != "SUCCESS"}
        assert not failed, failed
        # The run queue's limit of one backfill run at a time (dagster/backfill) held the second
        # until the first ended.
        first, second = sorted((web.run(r) for r in runs), key=lambda run: run["startTime"])
        assert second["startTime"] >= first["endTime"]
        assert_lake_exact(s3_storage, rows, complete=True)


def _recorded(web: Webserver) -> dict[str, set[date]]:
    """The days each dataset has recorded as materialized, as its Partitions tab shows them."""
    return {
        asset: {
            day
            for first, last in web.materialized_ranges(asset)
            for day in days_between(date.fromisoformat(first), date.fromisoformat(last))
        }
        for asset in DATASETS
    }


def _gaps(recorded: set[date]) -> list[tuple[str, str]]:
    """DAYS not in `recorded`, as (first, last) ranges."""
    return [(str(a), str(b)) for a, b in contiguous_ranges(set(DAYS) - recorded)]


_WINDOW = re.compile(
    r"crash_date >= '(\d{4}-\d\d-\d\d)T00:00:00' AND crash_date < '(\d{4}-\d\d-\d\d)T"
)


def _window(where: str) -> set[date]:
    """The days of a query's half-open crash_date window."""
    if not (found := _WINDOW.search(where)):
        return set()
    start, end = (date.fromisoformat(day) for day in found.groups())
    return days_between(start, end - timedelta(days=1))


def _one_run_each(web: Webserver, backfills: list[str]) -> list[str] | None:
    """The backfills' run ids, once each has its one run."""
    runs = [[r["runId"] for r in web.backfill_runs(b)] for b in backfills]
    return [run for [run] in runs] if all(len(r) == 1 for r in runs) else None
