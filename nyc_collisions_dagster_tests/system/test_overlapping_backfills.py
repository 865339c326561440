"""The same days backfilled twice at once as two CLI processes on the sample instance: both run,
no reader ever sees a file half-written or short of a row, and the lake ends exact. Through the
production queue the second waits for the first: test_killed_runs.py shows it on that stack."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from nyc_collisions_dagster_tests.range_runs import (
    DAYS,
    LATENCY,
    LakeReader,
    assert_lake_exact,
    materialize,
    range_rows,
    shell_settings,
)
from nyc_collisions_dagster_tests.soda_fake.generator import Row
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer

MONTH = DAYS[:30]
CRASHES = ["crashes"]  # a step per run: the overlap is the runs', whatever their assets


@pytest.fixture(scope="module")
def rows() -> dict[str, list[Row]]:
    return range_rows()


@pytest.mark.one_transport  # the processes and the lake are under test, not the API
def test_two_cli_runs_of_the_same_days_both_run_and_the_lake_stays_exact(
    make_soda_server: Callable[..., SodaServer],
    rows: dict[str, list[Row]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_soda_server(rows=rows, latency=LATENCY)
    env = shell_settings(tmp_path, server.url, monkeypatch)
    lake = env["COLLISIONS_STORAGE_URL"]
    # An instance in use, as a user's is: two processes opening a new one at once race to create
    # its databases (Dagster's, before any run starts; one fails with "table ... already exists").
    dg.DagsterInstance.get().dispose()
    reader = LakeReader(lake, rows, MONTH, CRASHES)
    reader.start()
    runs = [materialize(env, MONTH, assets=CRASHES) for _ in range(2)]  # within a second
    for run in runs:
        _, errors = run.communicate(timeout=300)
        assert run.returncode == 0, errors[-3000:]
    reader.stop()
    assert reader.files_read, "the reader saw no file while the runs wrote"
    assert_lake_exact(lake, rows, complete=True, days=MONTH, assets=CRASHES)
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records()
        # Each day recorded by both, with one data version: the same rows made the same file.
        for asset in CRASHES:
            for day in MONTH:
                events = instance.fetch_materializations(
                    dg.AssetRecordsFilter(dg.AssetKey(asset), asset_partitions=[str(day)]), limit=3
                ).records
                versions = [e.asset_materialization.tags["dagster/data_version"] for e in events]  # type: ignore[union-attr]
                assert len(versions) == 2 and len(set(versions)) == 1, (asset, day, versions)
    assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * 2
    # Both ran at once: nothing on the sample instance holds a run back for another of the same
    # days; the pool only caps the steps reading Socrata at once.
    starts, ends = [r.start_time or 0 for r in records], [r.end_time or 0 for r in records]
    assert max(starts) < min(ends)
