"""late_records_sensor catches rows added, amended and moved upstream, and nothing else."""

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from nyc_collisions_dagster.definitions import defs
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.raw.sensors import late_records_sensor
from nyc_collisions_dagster_tests.outcomes import (
    FIVE_DAYS,
    file_rows,
    raw_resources,
    requested,
    run_requested,
    typed_rows,
)
from nyc_collisions_dagster_tests.soda_fake.generator import crash_date, generate, to_api_dict


@pytest.fixture(scope="module")
def five_days_lake(soda_server, tmp_path_factory) -> Path:
    """2024-01-01..05 of all three assets, landed by Dagster once for the module's tests."""
    lake = tmp_path_factory.mktemp("five_days") / "lake"
    resources = raw_resources(soda_server, lake, api="soda2")  # the bytes are the same on soda3
    assert dg.materialize(collision_assets, resources=resources, tags=FIVE_DAYS).success
    return lake


@pytest.fixture
def watched(make_soda_server, five_days_lake, tmp_path):
    """A server of its own, a copy of the lake holding 2024-01-01..05, and a started cursor."""
    server = make_soda_server()
    lake = shutil.copytree(five_days_lake, tmp_path / "lake")
    resources = raw_resources(server, lake)
    first = _tick(resources, None)
    assert isinstance(first, dg.SensorResult) and not first.run_requests
    assert "Started watching" in first.skip_reason.skip_message
    return server, resources, lake, first.cursor


def _tick(resources, cursor):
    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    return late_records_sensor(context)


def _late_crash(day: str, donor_day: date) -> dict[str, object]:
    """A crash the server does not have yet, reported late for `day`."""
    row = generate(donor_day, donor_day + timedelta(days=1), datasets=("crashes",))["crashes"][0]
    return to_api_dict("crashes", row) | {"crash_date": f"{day}T00:00:00.000"}


def test_no_change_is_a_skip_with_a_reason(watched) -> None:
    _, resources, _, cursor = watched
    result = _tick(resources, cursor)
    assert isinstance(result, dg.SkipReason)
    assert "No rows added or amended upstream" in result.skip_message


def test_late_rows_for_two_days_rematerialize_exactly_those_days(watched) -> None:
    server, resources, lake, cursor = watched
    late = [
        _late_crash("2024-01-02", date(2024, 2, 1)),
        _late_crash("2024-01-04", date(2024, 2, 2)),
    ]
    server.upsert("crashes", late)
    result = _tick(resources, cursor)
    assert requested(result) == {
        ("crashes", "2024-01-02", "2024-01-02"),
        ("crashes", "2024-01-04", "2024-01-04"),
    }
    run_requested(result, resources)
    for crash in late:
        day = date.fromisoformat(crash["crash_date"][:10])
        rows = file_rows(str(lake / "crashes" / f"{day}.parquet"))
        assert rows == typed_rows("crashes", server.rows("crashes"), day)
        assert int(crash["collision_id"]) in {r["collision_id"] for r in rows}
    # The cursor moved past the change: the next tick has nothing to do.
    assert isinstance(_tick(resources, result.cursor), dg.SkipReason)


def test_an_amended_value_shows_up(watched) -> None:
    server, resources, lake, cursor = watched
    person = to_api_dict("persons", server.rows("persons")[10])
    day = person["crash_date"][:10]
    server.upsert("persons", [person | {"person_age": "77", "person_injury": "Injured"}])
    result = _tick(resources, cursor)
    assert requested(result) == {("persons", day, day)}
    run_requested(result, resources)
    [amended] = [
        r
        for r in file_rows(str(lake / "persons" / f"{day}.parquet"))
        if r["unique_id"] == int(person["unique_id"])
    ]
    assert amended["person_age"] == 77 and amended["person_injury"] == "Injured"


def test_a_moved_crash_leaves_its_old_day_and_enters_the_new_one(watched) -> None:
    server, resources, lake, cursor = watched
    crash = to_api_dict(
        "crashes",
        next(
            r for r in server.rows("crashes") if crash_date("crashes", r).startswith("2024-01-02")
        ),
    )
    server.upsert("crashes", [crash | {"crash_date": "2024-01-04T00:00:00.000"}])
    result = _tick(resources, cursor)
    assert requested(result) == {
        ("crashes", "2024-01-02", "2024-01-02"),
        ("crashes", "2024-01-04", "2024-01-04"),
    }
    run_requested(result, resources)
    key = int(crash["collision_id"])
    assert key not in {
        r["collision_id"] for r in file_rows(str(lake / "crashes" / "2024-01-02.parquet"))
    }
    assert key in {
        r["collision_id"] for r in file_rows(str(lake / "crashes" / "2024-01-04.parquet"))
    }
    for day in (date(2024, 1, 2), date(2024, 1, 4)):
        assert file_rows(str(lake / "crashes" / f"{day}.parquet")) == typed_rows(
            "crashes", server.rows("crashes"), day
        )


def test_contiguous_days_share_one_ranged_run_and_the_cursor_survives(watched) -> None:
    server, resources, _, cursor = watched
    server.upsert("vehicles", [_vehicle(server, "2024-01-03"), _vehicle(server, "2024-01-04")])
    first = _tick(resources, cursor)
    assert requested(first) == {("vehicles", "2024-01-03", "2024-01-04")}
    assert json.loads(first.cursor)["vehicles"] > json.loads(cursor)["vehicles"]
    assert json.loads(first.cursor)["crashes"] == json.loads(cursor)["crashes"]
    server.upsert("vehicles", [_vehicle(server, "2024-01-05")])
    second = _tick(resources, first.cursor)
    assert requested(second) == {("vehicles", "2024-01-05", "2024-01-05")}


def _vehicle(server, day: str) -> dict[str, object]:
    row = next(r for r in server.rows("vehicles") if crash_date("vehicles", r).startswith(day))
    return to_api_dict("vehicles", row) | {"vehicle_make": "AMENDED"}


def test_a_full_replace_upstream_is_capped_into_one_ranged_run(watched, monkeypatch) -> None:
    server, resources, _, cursor = watched
    monkeypatch.setattr("nyc_collisions_dagster.raw.sensors.MAX_CHANGED_ROWS", 500)
    server.touch_all("crashes")
    result = _tick(resources, cursor)
    assert requested(result) == {("crashes", "2024-01-01", "2024-01-10")}


def test_evaluates_from_the_loaded_definitions(watched, monkeypatch) -> None:
    server, _, lake, cursor = watched
    monkeypatch.setenv("SOCRATA_DOMAIN", server.url)
    monkeypatch.setenv("COLLISIONS_STORAGE_URL", str(lake))
    server.upsert("crashes", [_late_crash("2024-01-03", date(2024, 2, 3))])
    sensor = defs.resolve_sensor_def("late_records_sensor")
    expected = {("crashes", "2024-01-03", "2024-01-03")}
    assert requested(sensor(dg.build_sensor_context(cursor=cursor, definitions=defs))) == expected
    tick = sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor, definitions=defs))
    assert requested(tick) == expected


def test_a_tampered_cursor_is_refused_not_pasted_into_soql(watched) -> None:
    server, resources, _, cursor = watched
    tampered = json.dumps(json.loads(cursor) | {"crashes": "2024-01-01' OR 1=1 --"})
    with pytest.raises(ValueError, match="not a Socrata :updated_at timestamp"):
        _tick(resources, tampered)
    assert not any("1=1" in str(r.params) for r in server.requests)


def test_rows_of_a_day_that_is_no_partition_yet_advance_the_cursor_only(watched) -> None:
    server, resources, _, cursor = watched
    today = date.today().isoformat()  # the last partition is yesterday (New York), at the latest
    server.upsert("crashes", [_late_crash(today, date(2024, 2, 4))])
    result = _tick(resources, cursor)
    assert not result.run_requests
    assert "not partitions yet" in result.skip_reason.skip_message
    assert json.loads(result.cursor)["crashes"] > json.loads(cursor)["crashes"]
    assert isinstance(_tick(resources, result.cursor), dg.SkipReason)


def test_a_cursor_without_a_dataset_starts_watching_it_and_keeps_the_others(watched) -> None:
    server, resources, _, cursor = watched
    older = {name: stamp for name, stamp in json.loads(cursor).items() if name != "vehicles"}
    server.upsert("crashes", [_late_crash("2024-01-02", date(2024, 2, 4))])
    result = _tick(resources, json.dumps(older))
    assert requested(result) == {("crashes", "2024-01-02", "2024-01-02")}
    assert set(json.loads(result.cursor)) == {"crashes", "persons", "vehicles"}
    alone = _tick(resources, json.dumps({"crashes": json.loads(result.cursor)["crashes"]}))
    assert not alone.run_requests and "Started watching" in alone.skip_reason.skip_message
    assert set(json.loads(alone.cursor)) == {"crashes", "persons", "vehicles"}


@pytest.mark.one_transport  # compares the two
def test_a_range_run_and_a_tick_write_the_same_bytes_through_soda3_as_through_soda2(
    make_soda_server, tmp_path
) -> None:
    server = make_soda_server()
    resources, cursors = {}, {}
    for api in ("soda2", "soda3"):
        resources[api] = raw_resources(server, tmp_path / api, api=api, app_token="parity-token")
        assert dg.materialize(collision_assets, resources=resources[api], tags=FIVE_DAYS).success
        cursors[api] = _tick(resources[api], None).cursor
    assert cursors["soda2"] == cursors["soda3"]
    crash = to_api_dict(
        "crashes",
        next(
            r for r in server.rows("crashes") if crash_date("crashes", r).startswith("2024-01-02")
        ),
    )
    server.upsert("crashes", [crash | {"crash_date": "2024-01-04T00:00:00.000"}])
    server.upsert("crashes", [_late_crash("2024-01-03", date(2024, 2, 1))])
    server.upsert("vehicles", [_vehicle(server, "2024-01-05")])
    ticks = {api: _tick(resources[api], cursors[api]) for api in resources}
    assert (
        requested(ticks["soda2"])
        == requested(ticks["soda3"])
        == {
            ("crashes", "2024-01-02", "2024-01-04"),
            ("vehicles", "2024-01-05", "2024-01-05"),
        }
    )
    assert ticks["soda2"].cursor == ticks["soda3"].cursor
    for api, tick in ticks.items():
        run_requested(tick, resources[api])
    lakes = {
        api: {p.relative_to(tmp_path / api): p.read_bytes() for p in (tmp_path / api).rglob("*.*")}
        for api in resources  # every file, temporary ones included: none may be left
    }
    assert lakes["soda2"] == lakes["soda3"] and len(lakes["soda2"]) == 15
    for day in (date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)):  # the tick's days landed
        rows = file_rows(str(tmp_path / "soda3" / "crashes" / f"{day}.parquet"))
        assert rows == typed_rows("crashes", server.rows("crashes"), day)
    assert {r.path.split("/")[1] for r in server.requests} == {"resource", "api"}
