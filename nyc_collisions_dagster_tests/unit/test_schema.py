"""Typing Socrata's text values: explicit types, counted coercions, missing and unknown columns."""

from datetime import date

import pyarrow as pa

from nyc_collisions_dagster.raw.schema import SCHEMAS, TypingReport, to_typed


def _raw(**columns: list[str | None]) -> pa.Table:
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def test_every_dataset_has_the_contract_types() -> None:
    for asset, key in (
        ("crashes", "collision_id"),
        ("persons", "unique_id"),
        ("vehicles", "unique_id"),
    ):
        schema = SCHEMAS[asset]
        assert schema.field("crash_date").type == pa.date32()
        assert schema.field(key).type == pa.int64()
        assert "location" not in schema.names
    crashes = SCHEMAS["crashes"]
    assert crashes.field("latitude").type == pa.float64()
    assert crashes.field("number_of_cyclist_killed").type == pa.int64()
    assert crashes.field("zip_code").type == pa.string()
    assert SCHEMAS["persons"].field("person_age").type == pa.int64()
    assert SCHEMAS["vehicles"].field("vehicle_year").type == pa.int64()
    assert SCHEMAS["vehicles"].field("vehicle_occupants").type == pa.int64()


def test_values_are_typed_and_text_is_kept_as_sent() -> None:
    report = TypingReport()
    raw = _raw(
        crash_date=["2021-09-11T00:00:00.000", "2021-09-11T00:00:00.000"],
        crash_time=["9:15", "13:05"],
        latitude=["40.66857", None],
        collision_id=["4879453", "4879454"],
        zip_code=["01234", None],
        cross_street_name=["1972      CROTONA AVENUE", ""],
    )
    table = to_typed(raw, SCHEMAS["crashes"], report)
    assert table.schema == SCHEMAS["crashes"]
    rows = table.to_pylist()
    assert rows[0]["crash_date"] == date(2021, 9, 11)
    assert rows[0]["crash_time"] == "9:15"
    assert rows[0]["latitude"] == 40.66857 and rows[1]["latitude"] is None
    assert rows[0]["zip_code"] == "01234"
    assert rows[0]["cross_street_name"] == "1972      CROTONA AVENUE"
    assert rows[1]["cross_street_name"] == ""
    assert not report.coerced
    assert "borough" in report.missing_columns and rows[0]["borough"] is None


def test_malformed_values_become_null_and_are_counted() -> None:
    report = TypingReport()
    raw = _raw(
        crash_date=["2024-01-01T00:00:00.000"] * 4,
        number_of_persons_injured=["N/A", "2", " 3 ", "99999999999999999999999"],
        latitude=["abc", "40.5", "1e2", ""],
        collision_id=["1", "2", "3", "4"],
    )
    table = to_typed(raw, SCHEMAS["crashes"], report)
    assert table.column("number_of_persons_injured").to_pylist() == [None, 2, 3, None]
    assert table.column("latitude").to_pylist() == [None, 40.5, 100.0, None]
    assert report.coerced == {"number_of_persons_injured": 2, "latitude": 2}


def test_impossible_dates_are_coerced_one_by_one() -> None:
    report = TypingReport()
    raw = _raw(
        unique_id=["1", "2"], crash_date=["2024-02-30T00:00:00.000", "2024-02-29T00:00:00.000"]
    )
    table = to_typed(raw, SCHEMAS["persons"], report)
    assert table.column("crash_date").to_pylist() == [None, date(2024, 2, 29)]
    assert report.coerced == {"crash_date": 1}
