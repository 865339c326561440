"""Processed months hold exactly their raw days with the rules applied, and refuse partial input."""

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster.partitions import daily_partitions, monthly_partitions
from nyc_collisions_dagster.processed.assets import processed_key, processed_tables
from nyc_collisions_dagster.processed.transforms import SCHEMAS_PROCESSED
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster_tests.outcomes import NEW_YORK, failure_message, processed_rows
from nyc_collisions_dagster_tests.soda_fake.generator import crash_date

NAMES = ("crashes", "persons", "vehicles")

# Socrata only lands the raw days these tests start from; test_assets and test_cli read it on
# both transports.
pytestmark = pytest.mark.one_transport
MONTHS = {"2024-02": 29, "2024-03": 31, "2024-04": 30}


def _range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def _days(month: str, count: int) -> list[date]:
    first = date.fromisoformat(f"{month}-01")
    return [first + timedelta(days=i) for i in range(count)]


def _month_file(root: Path, name: str, month: str) -> Path:
    year, number = month.split("-")
    return root / name / f"year={year}" / f"month={number}" / f"{month}.parquet"


@pytest.fixture(scope="module")
def raw_months(month_server, layer_resources, tmp_path_factory) -> Path:
    """February to April landed raw by Dagster, once for the module: the processed layer reads
    only the files, so a test builds from a copy of them."""
    root = tmp_path_factory.mktemp("raw")
    raw = dg.materialize(
        collision_assets,
        resources=layer_resources(month_server, root),
        tags=_range("2024-02-01", "2024-04-30"),
    )
    assert raw.success
    return root / "collisions_raw_data"


def _copy_raw(raw_months: Path, root: Path) -> Path:
    return shutil.copytree(raw_months, root / "collisions_raw_data")


@pytest.fixture(scope="module")
def built(
    month_server, layer_resources, raw_months, tmp_path_factory
) -> tuple[dg.ExecuteInProcessResult, Path]:
    """February to April, processed from their raw days in one ranged run."""
    root = tmp_path_factory.mktemp("lake")
    _copy_raw(raw_months, root)
    result = dg.materialize(
        [processed_tables],
        resources=layer_resources(month_server, root),
        tags=_range("2024-02", "2024-04"),
    )
    return result, root / "collisions_processed_data"


@pytest.mark.parametrize("name", NAMES)
def test_each_month_is_its_raw_days_with_the_rules_applied(built, month_rows, name) -> None:
    result, root = built
    assert result.success
    for month, count in MONTHS.items():
        table = pq.read_table(_month_file(root, name, month))
        assert table.schema == SCHEMAS_PROCESSED[name]
        assert table.to_pylist() == processed_rows(name, month_rows, _days(month, count))
        assert pq.read_metadata(_month_file(root, name, month)).num_row_groups == 1


def test_times_follow_the_daylight_saving_and_unreadable_rules(built) -> None:
    _, root = built
    march = pq.read_table(_month_file(root, "crashes", "2024-03")).to_pylist()
    by_time = {(r["crash_date"], r["crash_time"]): r for r in march}
    skipped = by_time[(date(2024, 3, 10), "2:30")]["crash_datetime"]
    assert skipped.isoformat() == "2024-03-10T03:30:00-04:00"  # read on the clock before 2:00
    assert by_time[(date(2024, 3, 10), "1:59")]["crash_datetime"].utcoffset() == timedelta(hours=-5)
    for text in ("24:00", "7:5"):
        row = by_time[(date(2024, 3, 3), text)]
        assert row["crash_datetime"] is None and row["crash_hour"] is None
        assert (row["crash_year"], row["crash_month"], row["crash_day"]) == (2024, 3, 3)


def test_one_run_records_each_month_with_its_figures(built) -> None:
    result, root = built
    assert len(result.get_asset_materialization_events()) == 3 * len(MONTHS)
    ksi: dict[str, int] = {}
    persons_ksi: dict[str, int] = {}
    for event in result.get_asset_materialization_events():
        name, month = event.asset_key.path[-1], event.partition
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        table = pq.read_table(_month_file(root, name, month))
        assert metadata["dagster/row_count"] == table.num_rows > 0
        assert metadata["crashes"] == len(set(table["collision_id"].to_pylist()))
        assert metadata["unreadable_times"] == (2 if month == "2024-03" else 0)
        if name != "vehicles":
            assert metadata["persons_injured"] > 0 and "persons_killed" in metadata
        if name == "crashes":
            sources = table["crash_borough_source"].to_pylist()
            assert metadata["boroughs_from_coordinates"] == sources.count("coordinates") > 0
            assert metadata["ksi"] == sum(table["ksi"].to_pylist()) > 0
            ksi[month] = metadata["ksi"]
        if name == "persons":
            severity = table["injury_severity"].to_pylist()
            persons_ksi[month] = metadata["ksi"]
            assert metadata["ksi"] == severity.count("K") + severity.count("A")
        if name == "vehicles":  # the generator spells every vehicle type as the table knows it
            assert metadata["unmapped_vehicle_types"] == {}
    assert ksi == persons_ksi  # a crash's KSI are its persons'
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    assert len(checks) == 7 and all(c.passed for c in checks.values()), checks
    assert (
        checks[("processed/crashes", "row_count_matches_raw")].metadata["months_checked"].value == 3
    )


def test_a_month_with_raw_days_missing_fails_before_writing(
    both_layers, raw_months, tmp_path
) -> None:
    raw = _copy_raw(raw_months, tmp_path)
    for name in NAMES:  # February landed but for its last two days
        for day in ("2024-02-28", "2024-02-29"):
            (raw / name / f"{day}.parquet").unlink()
    result = dg.materialize(
        [processed_tables],
        resources=both_layers,
        partition_key="2024-02",
        raise_on_error=False,
    )
    assert not result.success
    message = failure_message(result)
    for name in NAMES:
        assert f"{name}: 2 days (2024-02-28, 2024-02-29)" in message
    assert not (tmp_path / "collisions_processed_data").exists()


def test_an_empty_month_and_its_crashes_without_persons(
    make_soda_server, layer_resources, month_rows, tmp_path
) -> None:
    server = make_soda_server({"crashes": month_rows["crashes"], "persons": [], "vehicles": []})
    resources = layer_resources(server, tmp_path)
    assert dg.materialize(
        collision_assets, resources=resources, tags=_range("2024-04-01", "2024-04-30")
    ).success
    result = dg.materialize([processed_tables], resources=resources, partition_key="2024-04")
    assert result.success
    for name in ("persons", "vehicles"):
        empty = pq.read_table(_month_file(tmp_path / "collisions_processed_data", name, "2024-04"))
        assert empty.num_rows == 0 and empty.schema == SCHEMAS_PROCESSED[name]
    crashes = pq.read_table(
        _month_file(tmp_path / "collisions_processed_data", "crashes", "2024-04")
    )
    assert set(crashes["person_count"].to_pylist()) == {0}
    [warning] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "crashes_have_persons"
    ]
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert "2024-04" in warning.description


def test_a_crash_left_on_its_old_day_fails_the_unique_check(
    make_soda_server, layer_resources, month_rows, raw_months, tmp_path
) -> None:
    _copy_raw(raw_months, tmp_path)
    server = make_soda_server(month_rows)
    resources = layer_resources(server, tmp_path)
    # Upstream corrects a crash's date; only its new day is fetched again, so the old day's file
    # still holds it.
    crash = next(r for r in month_rows["crashes"] if crash_date("crashes", r) < "2024-02-20")
    server.upsert("crashes", [("2024-02-20T00:00:00.000", *crash[1:])])
    assert dg.materialize(
        collision_assets[:1], resources=resources, partition_key="2024-02-20"
    ).success
    result = dg.materialize(
        [processed_tables],
        resources=resources,
        partition_key="2024-02",
        selection=[processed_key("crashes")],
    )
    [check] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "unique_key_is_unique"
    ]
    assert not check.passed and "2024-02" in check.description
    assert check.metadata["duplicate_keys"].value == 1


def test_the_current_month_is_a_partition_of_the_days_up_to_yesterday() -> None:
    now = datetime(2026, 11, 18, 12, 0, tzinfo=NEW_YORK)
    with dg.partition_loading_context(effective_dt=now):
        assert monthly_partitions.get_last_partition_key() == "2026-11"
        assert daily_partitions.get_last_partition_key() == "2026-11-17"
    mapping = processed_tables.get_partition_mapping(dg.AssetKey("crashes"))
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        monthly_partitions.subset_with_partition_keys(["2026-11"]),
        monthly_partitions,
        daily_partitions,
        current_time=now,
    )
    days = sorted(upstream.partitions_subset.get_partition_keys())
    assert days[0] == "2026-11-01" and days[-1] == "2026-11-17" and len(days) == 17
    assert not upstream.required_but_nonexistent_subset.get_partition_keys()


def test_a_month_that_cannot_be_written_fails_alone_and_the_others_are_recorded(
    both_layers, raw_months, tmp_path
) -> None:
    _copy_raw(raw_months, tmp_path)
    processed = tmp_path / "collisions_processed_data"
    # A folder where March's crashes file goes: that write fails, and no other would.
    _month_file(processed, "crashes", "2024-03").mkdir(parents=True)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [processed_tables],
        resources=both_layers,
        tags=_range("2024-02", "2024-04"),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    message = failure_message(result)
    assert "8 of 9 months written and materialized; not written: crashes 2024-03." in message
    assert f"Could not write {_month_file(processed, 'crashes', '2024-03')}" in message
    for name in NAMES:
        recorded = instance.get_materialized_partitions(processed_key(name))
        expected = {"2024-02", "2024-04"} if name == "crashes" else set(MONTHS)
        assert recorded == expected, name
        for month in expected:
            assert _month_file(processed, name, month).is_file()

    # Once the cause is gone, the failed partition completes the range.
    _month_file(processed, "crashes", "2024-03").rmdir()
    again = dg.materialize(
        [processed_tables], resources=both_layers, partition_key="2024-03", instance=instance
    )
    assert again.success
    assert instance.get_materialized_partitions(processed_key("crashes")) == set(MONTHS)
