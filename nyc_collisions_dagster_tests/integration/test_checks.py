"""The asset checks fail, naming the days, when files and source disagree; they pass otherwise."""

import threading
import time

import dagster as dg

from nyc_collisions_dagster.raw.assets import collision_assets, crashes, persons
from nyc_collisions_dagster_tests.outcomes import raw_resources
from nyc_collisions_dagster_tests.soda_fake.generator import crash_date, to_api_dict


def _range(start: str, end: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start,
        "dagster/asset_partition_range_end": end,
    }


def _evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def test_all_checks_pass_on_a_consistent_range(make_soda_server, tmp_path) -> None:
    server = make_soda_server()
    result = dg.materialize(
        collision_assets,
        resources=raw_resources(server, tmp_path / "lake"),
        tags=_range("2024-01-01", "2024-01-04"),
    )
    evaluations = _evaluations(result)
    assert len(evaluations) == 11  # 2 + 3 + 3 of the fetch, and lake_matches_source on each
    assert all(e.passed for e in evaluations.values()), evaluations
    assert evaluations[("crashes", "row_count_matches_source")].metadata["days_checked"].value == 4


def test_row_count_fails_for_the_day_whose_file_is_short(make_soda_server, tmp_path) -> None:
    server = make_soda_server()
    rows = [to_api_dict("crashes", r) for r in server.rows("crashes")]
    doomed = [r["collision_id"] for r in rows if r["crash_date"].startswith("2024-01-02")][:3]
    counted = threading.Event()

    def delete_after_the_count(path: str, params: dict[str, str]) -> None:
        if path.endswith(".csv"):
            server.on_request = None
            # The page is requested beside the count: wait until the count has been answered
            # (the server logs a request once its answer is made), or it could miss the rows too.
            # What the wait saw is asserted in the test: a failure here would stay on the thread.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if any("count(" in r.clauses.get("$select", "") for r in server.requests):
                    counted.set()
                    break
                time.sleep(0.01)
            server.delete("crashes", doomed)  # rows vanish upstream between count and fetch

    server.on_request = delete_after_the_count
    # A window longer than a page asks for its count first: a short one would ask for both at
    # once, and the deletion could come before the count.
    result = dg.materialize(
        [crashes],
        resources=raw_resources(server, tmp_path / "lake", page_size=1_000),
        tags=_range("2024-01-01", "2024-01-03"),
    )
    assert counted.is_set(), "the count query never came before the page"
    check = _evaluations(result)[("crashes", "row_count_matches_source")]
    assert not check.passed
    assert "2024-01-02" in check.description and "2024-01-01" not in check.description
    failed = check.metadata["failed_days"].value["2024-01-02"]
    assert failed["socrata"] - failed["file"] == 3
    lake = _evaluations(result)[("crashes", "lake_matches_source")]
    assert not lake.passed and lake.severity == dg.AssetCheckSeverity.ERROR
    [differing] = lake.metadata["differing_days"].value.records
    assert differing.data["day"] == "2024-01-02"
    assert differing.data["source_rows"] - differing.data["lake_rows"] == 3


def test_a_key_in_two_days_fails_the_unique_check(make_soda_server, tmp_path) -> None:
    server = make_soda_server()
    moved = to_api_dict("crashes", server.rows("crashes")[0])  # a crash of 2024-01-01
    requests = []

    def move_when_the_third_day_is_asked_for(path: str, params: dict[str, str]) -> None:
        if path.endswith(".csv"):
            requests.append(params)
            if params["$where"].startswith("crash_date >= '2024-01-03"):
                server.upsert("crashes", [moved | {"crash_date": "2024-01-03T00:00:00.000"}])

    server.on_request = move_when_the_third_day_is_asked_for
    # One day a page, one request at a time, and day 3 waits for a thread that has finished
    # day 1 or 2: the move lands between two pages of one run, after day 1 was served.
    resources = raw_resources(server, tmp_path / "lake", page_size=800, max_workers=1)
    result = dg.materialize([crashes], resources=resources, tags=_range("2024-01-01", "2024-01-03"))
    assert len(requests) >= 3
    check = _evaluations(result)[("crashes", "unique_key_is_unique")]
    assert not check.passed
    assert check.metadata["duplicate_keys"].value == 1
    assert check.metadata["failed_days"].value == ["2024-01-01", "2024-01-03"]


def test_persons_pointing_at_no_crash_warn(make_soda_server, tmp_path) -> None:
    server = make_soda_server()
    person = to_api_dict(
        "persons",
        next(
            r for r in server.rows("persons") if crash_date("persons", r).startswith("2024-01-02")
        ),
    )
    server.upsert("persons", [person | {"collision_id": "1"}])
    resources = raw_resources(server, tmp_path / "lake")
    assert dg.materialize([crashes], resources=resources, partition_key="2024-01-02").success
    result = dg.materialize([persons], resources=resources, tags=_range("2024-01-02", "2024-01-03"))
    check = _evaluations(result)[("persons", "collision_ids_exist_in_crashes")]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["failed_days"].value == {"2024-01-02": 1}
    assert check.metadata["days_without_crashes_file"].value == 1  # 2024-01-03 has no crashes file
    assert result.success  # a warning does not fail the run


def test_a_check_left_out_of_the_run_reads_nothing(make_soda_server, tmp_path) -> None:
    server = make_soda_server()
    resources = raw_resources(server, tmp_path / "lake")
    assert dg.materialize([crashes], resources=resources, partition_key="2024-01-02").success
    # The linked check reads this file; a run that leaves the check out never opens it.
    (tmp_path / "lake" / "crashes" / "2024-01-02.parquet").write_bytes(b"not parquet")
    linked = dg.AssetCheckKey(persons.key, "collision_ids_exist_in_crashes")
    without = dg.AssetSelection.assets(persons) - dg.AssetSelection.checks(linked)
    result = dg.materialize(
        [persons], resources=resources, partition_key="2024-01-02", selection=without
    )
    assert result.success
    assert ("persons", "collision_ids_exist_in_crashes") not in _evaluations(result)
    assert ("persons", "unique_key_is_unique") in _evaluations(result)
    with_it = dg.materialize(
        [persons], resources=resources, partition_key="2024-01-02", raise_on_error=False
    )
    [failure] = [event for event in with_it.all_events if event.is_step_failure]
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "StorageError" and "crashes/2024-01-02.parquet" in cause.message
