"""Reconciliation finds the days where lake and source disagree, deletions and unstamped inserts
included, fetches exactly those, records the days a killed run wrote but never recorded, and
leaves never-landed and in-progress days alone."""

import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.definitions import defs
from nyc_collisions_dagster.raw.assets import collision_assets, crashes, vehicles
from nyc_collisions_dagster.raw.reconciliation import lake_check_keys, partition_days
from nyc_collisions_dagster.raw.reconciliation_sensor import reconciliation_sensor
from nyc_collisions_dagster.raw.sensors import late_records_sensor
from nyc_collisions_dagster.raw.unrecorded import unrecorded
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.outcomes import file_rows, requested, run_requested, typed_rows
from nyc_collisions_dagster_tests.soda_fake.generator import Row, generate, to_api_dict
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer

LAKE_CHECK = "lake_matches_source"


@dataclass
class Landed:
    server: SodaServer
    resources: dict[str, object]
    instance: dg.DagsterInstance
    lake: Path

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(instance=self.instance, resources=self.resources)
        return reconciliation_sensor(context)

    def delete(self, dataset: str, day: str, count: int) -> None:
        """Rows of `day` withdrawn upstream."""
        key = DATASETS[dataset].unique_key
        records = [to_api_dict(dataset, row) for row in self.server.rows(dataset)]
        keys = [r[key] for r in records if r["crash_date"].startswith(day)][:count]
        assert self.server.delete(dataset, keys) == count

    def file_matches_source(self, dataset: str, day: str) -> bool:
        rows = file_rows(str(self.lake / dataset / f"{day}.parquet"))
        return rows == typed_rows(dataset, self.server.rows(dataset), date.fromisoformat(day))


def _range(first: str, last: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


@pytest.fixture(scope="module")
def ten_days() -> dict[str, list[Row]]:
    """2024-01-01 … 10, 10-20 crashes a day: few rows, so a test pays Dagster's cost per day."""
    return generate(date(2024, 1, 1), date(2024, 1, 11), crashes_per_day=(10, 20))


@pytest.fixture
def landed(make_soda_server, ten_days, tmp_path) -> Landed:
    """The ten days served, and landed in the lake by Dagster."""
    server = make_soda_server(ten_days)
    resources = {
        "socrata": SocrataResource(domain=server.url),
        "io_manager": ParquetIOManager(storage_url=str(tmp_path / "lake")),
    }
    instance = dg.DagsterInstance.ephemeral()
    days = _range("2024-01-01", "2024-01-10")
    done = dg.materialize(collision_assets, resources=resources, instance=instance, tags=days)
    assert done.success
    return Landed(server, resources, instance, tmp_path / "lake")


def test_the_sensor_is_daily_and_off_by_default() -> None:
    sensor = defs.resolve_sensor_def("reconciliation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == 24 * 3600


def test_rows_deleted_on_two_days_are_fetched_again_then_nothing_is(landed, monkeypatch) -> None:
    # Evaluated as the daemon does: from the loaded Definitions, resources from the environment.
    monkeypatch.setenv("SOCRATA_DOMAIN", landed.server.url)
    monkeypatch.setenv("COLLISIONS_STORAGE_URL", str(landed.lake))
    sensor = defs.resolve_sensor_def("reconciliation_sensor")

    def tick() -> dg.SensorResult:
        context = dg.build_sensor_context(instance=landed.instance, definitions=defs)
        return sensor.evaluate_tick(context)

    landed.delete("crashes", "2024-01-04", 2)
    landed.delete("crashes", "2024-01-08", 1)
    first = tick()
    assert requested(first) == {
        ("crashes", "2024-01-04", "2024-01-04"),
        ("crashes", "2024-01-08", "2024-01-08"),
    }
    for request in first.run_requests:  # every check of the asset: the lake check costs nothing
        assert request.asset_check_keys is None
    run_requested(first, landed.resources, landed.instance)
    assert landed.file_matches_source("crashes", "2024-01-04")
    assert landed.file_matches_source("crashes", "2024-01-08")
    assert not tick().run_requests
    # The same day changes again after its run: the next tick finds it.
    landed.delete("crashes", "2024-01-04", 1)
    assert requested(tick()) == {("crashes", "2024-01-04", "2024-01-04")}


def test_an_insert_without_a_new_stamp_is_missed_by_late_records_found_here(landed) -> None:
    started = late_records_sensor(dg.build_sensor_context(resources=landed.resources))
    persons = [to_api_dict("persons", row) for row in landed.server.rows("persons")]
    person = next(p for p in persons if p["crash_date"].startswith("2024-01-06"))
    late = person | {"unique_id": "99999999"}
    landed.server.upsert("persons", [late], stamp="2024-01-07T06:00:00.000Z")  # the day's stamp
    context = dg.build_sensor_context(cursor=started.cursor, resources=landed.resources)
    assert isinstance(late_records_sensor(context), dg.SkipReason)
    result = landed.tick()
    assert requested(result) == {("persons", "2024-01-06", "2024-01-06")}
    run_requested(result, landed.resources, landed.instance)
    assert landed.file_matches_source("persons", "2024-01-06")


def test_never_landed_days_are_reported_not_requested_even_by_a_capped_range(
    landed, monkeypatch, capfd
) -> None:
    # Another instance, whose records say: vehicles landed but for 5 and 6 January, and nothing
    # else landed at all, though the source has rows on every one of the ten days.
    landed.instance = instance = dg.DagsterInstance.ephemeral()
    for first, last in (("2024-01-01", "2024-01-04"), ("2024-01-07", "2024-01-10")):
        tags = _range(first, last)
        run = dg.materialize([vehicles], resources=landed.resources, instance=instance, tags=tags)
        assert run.success
    for day in ("2024-01-03", "2024-01-06", "2024-01-08"):
        landed.delete("vehicles", day, 1)
    result = landed.tick()
    assert requested(result) == {
        ("vehicles", "2024-01-03", "2024-01-03"),
        ("vehicles", "2024-01-08", "2024-01-08"),
    }
    # The tick's log line, as the daemon's console shows it.
    [summary] = [line for line in capfd.readouterr().err.splitlines() if "days compared" in line]
    days = partition_days()
    assert "8 landed days compared, 2 differ from Socrata (largest: vehicles 2024-01-03" in summary
    assert f"crashes {len(days):,} days never landed: {days[0]}...{days[-1]}" in summary
    assert f"vehicles {len(days) - 8:,} days never landed: {days[0]}...{days[-1]}" in summary
    # Past the cap, the days become one range that breaks around the never-landed ones.
    monkeypatch.setattr("nyc_collisions_dagster.raw.ticks.MAX_RUNS", 1)
    assert requested(landed.tick()) == {
        ("vehicles", "2024-01-03", "2024-01-04"),
        ("vehicles", "2024-01-07", "2024-01-08"),
    }


def test_a_day_a_run_in_progress_is_writing_is_not_requested_twice(landed) -> None:
    landed.delete("crashes", "2024-01-04", 1)
    landed.delete("crashes", "2024-01-08", 1)
    release, asked = threading.Event(), threading.Event()

    def hold_the_fetch_of_the_fourth(path: str, params: dict[str, str]) -> None:
        if path.endswith(".csv") and "2024-01-04" in params["$where"]:
            asked.set()
            release.wait(30)

    landed.server.on_request = hold_the_fetch_of_the_fourth
    outcome: list[bool] = []
    run = threading.Thread(
        target=lambda: outcome.append(
            dg.materialize(
                [crashes],
                partition_key="2024-01-04",
                resources=landed.resources,
                instance=landed.instance,
            ).success
        )
    )
    run.start()
    try:
        assert asked.wait(30)
        result = landed.tick()
    finally:
        release.set()
        run.join(30)
    assert outcome == [True]
    assert requested(result) == {("crashes", "2024-01-08", "2024-01-08")}


def test_days_a_killed_run_wrote_but_never_recorded_are_recorded_from_their_files(landed) -> None:
    # Another instance, whose records say only 1-4 January of crashes landed: the lake's other
    # files are whole but unrecorded, as a run killed between a file and its record leaves them.
    landed_by_run = landed.instance
    landed.instance = instance = dg.DagsterInstance.ephemeral()
    done = dg.materialize(
        [crashes],
        resources=landed.resources,
        instance=instance,
        tags=_range("2024-01-01", "2024-01-04"),
    )
    assert done.success
    landed.delete("crashes", "2024-01-06", 1)  # upstream moved on since the killed run fetched it
    first = landed.tick()
    assert isinstance(first, dg.SensorResult)
    days = [f"2024-01-{d:02}" for d in range(1, 11)]
    expected = {("crashes", day) for day in days[4:]}
    expected |= {(name, day) for name in ("persons", "vehicles") for day in days}
    assert {(e.asset_key.to_user_string(), e.partition) for e in first.asset_events} == expected
    assert not first.run_requests  # compared once recorded, on the next tick
    for event in first.asset_events:
        # Recorded as the run that wrote the file would have: its rows and its data version.
        [written] = landed_by_run.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=event.asset_key, asset_partitions=[event.partition]),
            limit=1,
        ).records
        by_run = written.asset_materialization
        assert event.metadata["dagster/row_count"] == by_run.metadata["dagster/row_count"]
        assert event.tags["dagster/data_version"] == by_run.tags["dagster/data_version"]
        assert "died before recording it" in event.metadata["found_by"].value
        instance.report_runless_asset_event(event)  # as the daemon stores a tick's events
    second = landed.tick()
    assert not second.asset_events
    assert requested(second) == {("crashes", "2024-01-06", "2024-01-06")}
    run_requested(second, landed.resources, instance)
    assert landed.file_matches_source("crashes", "2024-01-06")


def test_an_unrecorded_day_that_a_run_in_progress_may_record_is_left_to_it(landed) -> None:
    store = landed.resources["io_manager"].store("crashes")
    days = {date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)}
    found, more = unrecorded(
        store, days, recorded={date(2024, 1, 1)}, busy={date(2024, 1, 2)}, limit=10
    )
    assert more == 0
    assert [event.partition for event in found] == ["2024-01-03"]
    assert found[0].metadata["dagster/row_count"].value == store.row_count("2024-01-03")
    # A tick records at most its limit, the earliest first, and counts the others.
    first, more = unrecorded(store, days, recorded=set(), busy=set(), limit=1)
    assert [event.partition for event in first] == ["2024-01-01"] and more == 2


def test_the_check_fails_naming_the_days_and_passes_once_they_are_rematerialized(landed) -> None:
    landed.delete("crashes", "2024-01-04", 2)
    landed.delete("crashes", "2024-01-08", 1)
    landed.server.reset_log()
    failed = _run_check(landed)
    # One count query per dataset, and no rows fetched.
    assert sorted(r.dataset_id for r in landed.server.requests) == sorted(
        d.dataset_id for d in DATASETS.values()
    )
    selects = [r.clauses["$select"] for r in landed.server.requests]
    assert all(select.startswith("crash_date, count(") for select in selects), selects
    check = failed["crashes"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "2 days differ from Socrata: 2024-01-04, 2024-01-08" in check.description
    table = check.metadata["differing_days"].value.records
    assert [(r.data["day"], r.data["lake_rows"] - r.data["source_rows"]) for r in table] == [
        ("2024-01-04", 2),
        ("2024-01-08", 1),
    ]
    assert failed["persons"].passed and failed["vehicles"].passed
    for day in ("2024-01-04", "2024-01-08"):
        assert dg.materialize(
            [crashes], partition_key=day, resources=landed.resources, instance=landed.instance
        ).success
    assert _run_check(landed)["crashes"].passed


def _run_check(landed: Landed) -> dict[str, dg.AssetCheckEvaluation]:
    """lake_matches_source on its own, as the UI's "Execute" runs it: no asset is materialized."""
    result = dg.materialize(
        collision_assets,
        selection=dg.AssetSelection.checks(*lake_check_keys()),
        resources=landed.resources,
        instance=landed.instance,
    )
    assert not result.get_asset_materialization_events()
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {LAKE_CHECK}
    return {e.asset_key.to_user_string(): e for e in evaluations}


def test_in_a_run_that_lands_days_the_check_compares_those_in_the_assets_step(landed) -> None:
    landed.delete("crashes", "2024-01-04", 2)  # differs, but is not one of the run's days
    landed.server.reset_log()
    result = dg.materialize(
        [crashes],
        resources=landed.resources,
        instance=landed.instance,
        tags=_range("2024-01-06", "2024-01-07"),
    )
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == LAKE_CHECK]
    assert check.passed
    assert check.metadata["days_compared"].value == 2
    assert check.metadata["days_never_landed"].value == 0
    # No step and no count query of its own: the fetch's count answers it.
    assert {e.step_key for e in result.all_events if e.step_key} == {"crashes"}
    counts = [r for r in landed.server.requests if "count(" in r.clauses.get("$select", "")]
    assert len(counts) == 1
    assert not _run_check(landed)["crashes"].passed  # on its own it compares the whole history


def test_the_other_checks_selected_without_the_asset_are_skipped_saying_why(landed) -> None:
    result = dg.materialize(
        [crashes],
        selection=dg.AssetSelection.checks(*crashes.check_keys),
        resources=landed.resources,
        instance=landed.instance,
    )
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {LAKE_CHECK}
    assert not result.get_asset_materialization_events()
    logs = landed.instance.all_logs(result.run_id)
    [warning] = [e.user_message for e in logs if "skipped: they check" in e.user_message]
    assert "row_count_matches_source, unique_key_is_unique skipped" in warning
