"""The summary's figures by day and borough, and its rebuild: changed months read again, the
others kept as they were, vanished ones dropped."""

from datetime import date

import pyarrow as pa

from nyc_collisions_dagster.processed.summary import SUMMARY_SCHEMA, SUMS, rebuild, summarize


def _crashes(rows: list[tuple[str, str | None, int | None, int | None]]) -> pa.Table:
    """Processed crashes with (day, borough, injured, ksi); the other sums are 1 each."""
    columns: dict[str, list] = {
        "crash_date": [date.fromisoformat(r[0]) for r in rows],
        "crash_borough": [r[1] for r in rows],
    }
    for column in SUMS.values():
        columns[column] = [1] * len(rows)
    columns["number_of_persons_injured"] = [r[2] for r in rows]
    columns["ksi"] = [r[3] for r in rows]
    return pa.table(columns)


def test_one_row_per_day_and_borough_with_the_null_borough_its_own_group() -> None:
    table = summarize(
        _crashes(
            [
                ("2024-02-01", "BRONX", 2, 1),
                ("2024-02-01", "BRONX", None, 0),
                ("2024-02-01", None, 1, None),
                ("2024-02-01", None, None, 2),
                ("2024-03-05", "QUEENS", None, None),
            ]
        )
    )
    assert table.schema == SUMMARY_SCHEMA
    rows = {(r["crash_date"].isoformat(), r["crash_borough"]): r for r in table.to_pylist()}
    assert list(rows) == [("2024-02-01", "BRONX"), ("2024-02-01", None), ("2024-03-05", "QUEENS")]
    bronx, unknown, queens = rows.values()
    assert (bronx["crashes"], bronx["injured"], bronx["ksi"], bronx["ksi_crashes"]) == (2, 2, 1, 1)
    assert (unknown["crashes"], unknown["injured"], unknown["ksi"]) == (2, 1, 2)
    assert (unknown["year"], unknown["month"], unknown["killed"]) == (2024, 2, 2)
    # Only nulls: no casualty was reported, so 0, not null.
    assert (queens["injured"], queens["ksi"], queens["ksi_crashes"]) == (0, 0, 0)


def test_a_rebuild_reads_only_the_months_that_changed() -> None:
    months = {
        "2024-01": _crashes([("2024-01-10", "BRONX", 1, 0)]),
        "2024-02": _crashes([("2024-02-10", "BRONX", 1, 0)]),
        "2024-03": _crashes([("2024-03-10", "BRONX", 1, 0)]),
    }
    asked: list[list[str]] = []

    def read(wanted: list[str]) -> pa.Table:
        asked.append(wanted)
        return pa.concat_tables(months[m] for m in wanted)

    first, read_first = rebuild(None, {}, {"2024-01": "a", "2024-02": "a"}, read)
    assert read_first == ["2024-01", "2024-02"] and first.num_rows == 2
    # February rewritten with two more injured, March new, January unchanged and kept.
    months["2024-02"] = _crashes([("2024-02-10", "BRONX", 3, 0)])
    versions = {"2024-01": "a", "2024-02": "b", "2024-03": "a"}
    second, read_second = rebuild(first, {"2024-01": "a", "2024-02": "a"}, versions, read)
    assert read_second == ["2024-02", "2024-03"]
    assert asked[-1] == ["2024-02", "2024-03"]
    assert [r["injured"] for r in second.to_pylist()] == [1, 3, 1]
    # January's file removed: its rows go, and nothing is read.
    third, read_third = rebuild(second, versions, {"2024-02": "b", "2024-03": "a"}, read)
    assert read_third == [] and len(asked) == 2
    assert [r["crash_date"].month for r in third.to_pylist()] == [2, 3]
    empty, _ = rebuild(third, versions, {}, read)
    assert empty.num_rows == 0 and empty.schema == SUMMARY_SCHEMA
