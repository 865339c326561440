"""A run killed with SIGKILL mid-range loses nothing: whatever a reader sees in the lake is whole
and exact, every recorded day has its file, and `make backfill` over the range again fails the
killed run, frees its pool slots and ends exact, with no duplicate rows."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from nyc_collisions_dagster.constants import POOL
from nyc_collisions_dagster.instance.orphans import fail_orphans
from nyc_collisions_dagster_tests.killed_runs import (
    CRASHES_PER_DAY,
    DAYS,
    END,
    LATENCY,
    SLOW,
    assert_lake_exact,
    recorded,
)
from nyc_collisions_dagster_tests.soda_fake.generator import Row, generate
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
KILL_AFTER_DAYS = 20  # recorded, over the three datasets


@pytest.fixture(scope="module")
def rows() -> dict[str, list[Row]]:
    return generate(DAYS[0], END, crashes_per_day=CRASHES_PER_DAY)


def materialize(env: dict[str, str], config: dict | None = None) -> subprocess.Popen[str]:
    """`dagster asset materialize` of the three datasets over DAYS, in its own process group as a
    shell runs it, so that the kill takes its step processes too."""
    command = [DAGSTER, "asset", "materialize", "-m", "nyc_collisions_dagster.definitions"]
    command += ["--select", "crashes,persons,vehicles"]
    command += ["--partition-range", f"{DAYS[0]}...{DAYS[-1]}"]
    command += ["--config-json", json.dumps(config)] if config else []
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_once_days_are_recorded(run: subprocess.Popen[str], instance: dg.DagsterInstance) -> None:
    deadline = time.monotonic() + 120
    while sum(map(len, recorded(instance).values())) < KILL_AFTER_DAYS:
        assert run.poll() is None, f"the run ended before the kill: {run.stderr.read()[-2000:]}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no days recorded in time"
        time.sleep(0.05)
    assert not fail_orphans(instance), "a running run was taken for a killed one"
    os.killpg(run.pid, signal.SIGKILL)  # no chance to clean up, flush or record anything
    run.wait()


@pytest.fixture(params=["local", "s3"])
def storage_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The lake's URL (a folder, or a prefix of the bucket on moto), as the shell's settings."""
    if request.param == "local":
        return {"COLLISIONS_STORAGE_URL": str(tmp_path / "collisions_raw_data")}
    aws = request.getfixturevalue("aws_env")
    return {**aws, "COLLISIONS_STORAGE_URL": request.getfixturevalue("s3_storage")}


@pytest.mark.one_transport  # the processes and the lake are under test, not the API
def test_a_range_killed_mid_way_by_sigkill_loses_nothing_and_lands_again_exactly(
    make_soda_server: Callable[..., SodaServer],
    rows: dict[str, list[Row]],
    storage_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_soda_server(rows=rows, latency=LATENCY)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")  # `make` gives it
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # where the pooled event log keeps its files
    env = {**os.environ, **storage_env, "SOCRATA_DOMAIN": server.url}
    lake = storage_env["COLLISIONS_STORAGE_URL"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        kill_once_days_are_recorded(materialize(env, SLOW), instance)

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
