"""Each day is materialized as soon as its file is written, with its rows and a data version
that changes with its contents; the run's summary comes last, on the newest day."""

import threading
import time
from datetime import date

import dagster as dg

from nyc_collisions_dagster.raw.assets import crashes
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster_tests.outcomes import FIVE_DAYS, raw_resources, typed_rows
from nyc_collisions_dagster_tests.soda_fake.generator import crash_date, to_api_dict

CRASHES = dg.AssetKey("crashes")


def test_days_are_materialized_while_later_days_are_still_being_fetched(
    make_soda_server, soda_rows, tmp_path
) -> None:
    server = make_soda_server()
    release, held = threading.Event(), threading.Event()

    def hold_the_third_day(path: str, params: dict[str, str]) -> None:
        if path.endswith(".csv") and params["$where"].startswith("crash_date >= '2024-01-03"):
            held.set()
            release.wait(60)

    server.on_request = hold_the_third_day
    instance = dg.DagsterInstance.ephemeral()
    # A page a day, so that the third day is a request of its own, and a second request in
    # flight to fetch the others meanwhile.
    resources = raw_resources(server, tmp_path / "lake", page_size=800, max_workers=2)
    outcome: list[dg.ExecuteInProcessResult] = []
    run = threading.Thread(
        target=lambda: outcome.append(
            dg.materialize([crashes], resources=resources, instance=instance, tags=FIVE_DAYS)
        )
    )
    run.start()
    try:
        assert held.wait(60)
        # While the third day is being fetched, the others are written and recorded; the newest
        # waits for the run's summary.
        expected = {"2024-01-01", "2024-01-02", "2024-01-04"}
        deadline = time.monotonic() + 30
        while instance.get_materialized_partitions(CRASHES) != expected:
            assert time.monotonic() < deadline, instance.get_materialized_partitions(CRASHES)
            time.sleep(0.05)
        [running] = instance.get_runs()
        assert running.status == dg.DagsterRunStatus.STARTED
    finally:
        release.set()
        run.join(60)
    [result] = outcome
    assert result.success
    assert instance.get_materialized_partitions(CRASHES) == expected | {"2024-01-03", "2024-01-05"}
    # Each day once, with its rows; the newest last, with the run's figures.
    events = result.get_asset_materialization_events()
    assert sorted(e.partition for e in events) == sorted(expected | {"2024-01-03", "2024-01-05"})
    for event in events:
        rows = typed_rows("crashes", soda_rows["crashes"], date.fromisoformat(event.partition))
        assert event.materialization.metadata["dagster/row_count"].value == len(rows)
    latest = instance.get_latest_materialization_event(CRASHES).asset_materialization
    assert latest.partition == "2024-01-05"
    assert latest.metadata["run_partitions"].value == 5
    assert latest.metadata["requests"].value == len(server.requests)


def test_a_day_landed_again_keeps_its_data_version_until_its_rows_change(
    make_soda_server, soda_rows, tmp_path
) -> None:
    server = make_soda_server()
    resources = raw_resources(server, tmp_path / "lake")

    def version() -> str:
        result = dg.materialize([crashes], resources=resources, partition_key="2024-01-03")
        [event] = result.get_asset_materialization_events()
        return event.materialization.tags["dagster/data_version"]

    first = version()
    assert version() == first
    crash = next(
        r for r in soda_rows["crashes"] if crash_date("crashes", r).startswith("2024-01-03")
    )
    server.upsert("crashes", [to_api_dict("crashes", crash) | {"borough": "QUEENS-AMENDED"}])
    assert version() != first


def test_days_written_between_two_looks_are_recorded_together_each_with_its_own_record(
    soda_server, soda_rows, tmp_path, monkeypatch
) -> None:
    """With DAGSTER_EVENT_BATCH_SIZE set, the days the writer finished since the run last
    looked are stored as one batch (raw/recording.py); on the pooled SQLite storage each day
    still reads back alone: once, with its rows and its file's digest, the newest last."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "event_log_storage:\n"
        "  module: nyc_collisions_dagster.instance.sqlite\n"
        "  class: PooledSqliteEventLogStorage\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    lake = tmp_path / "lake"
    # Every day in one page: the writer finishes several between two looks.
    resources = raw_resources(soda_server, lake, page_size=50_000)
    store = ParquetIOManager(storage_url=str(lake)).store("crashes")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize([crashes], resources=resources, instance=instance, tags=FIVE_DAYS)
        assert result.success
        records = instance.fetch_materializations(CRASHES, limit=100).records
        days = sorted(r.partition_key for r in records)
        assert days == [f"2024-01-0{day}" for day in range(1, 6)]
        for record in records:
            day = date.fromisoformat(record.partition_key)
            materialization = record.asset_materialization
            rows = typed_rows("crashes", soda_rows["crashes"], day)
            assert materialization.metadata["dagster/row_count"].value == len(rows)
            assert (len(rows), materialization.tags["dagster/data_version"]) == store.describe(
                record.partition_key
            )
        latest = instance.get_latest_materialization_event(CRASHES).asset_materialization
        assert latest.partition == "2024-01-05" and latest.metadata["run_partitions"].value == 5
