"""MONTH, PARTITION, FROM and TO are read as users write them, and each mistake is one sentence."""

from datetime import date, datetime, timezone

import pytest

from nyc_collisions_dagster.cli.arguments import (
    UsageError,
    last_day,
    last_month,
    parse_day,
    parse_month,
    parse_range,
)

# 03:00 UTC on December 6 is still December 5 in New York: its last complete day is December 4.
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=timezone.utc)


def test_the_last_complete_day_and_month_are_new_yorks() -> None:
    assert last_day(NOW) == date(2026, 12, 4)
    assert last_month(NOW) == "2026-11"
    assert last_month(datetime(2026, 12, 2, 12, tzinfo=timezone.utc)) == "2026-11"
    assert last_month(datetime(2026, 12, 1, 12, tzinfo=timezone.utc)) == "2026-11"


def test_a_month_is_its_days_and_the_current_month_ends_at_its_last_complete_day() -> None:
    february = parse_month("2024-02", NOW)
    assert (february.first, february.last, february.count) == (
        date(2024, 2, 1),
        date(2024, 2, 29),
        29,
    )
    assert february.partition_range == "2024-02-01...2024-02-29"
    assert february.month == "2024-02"
    current = parse_month("2026-12", NOW)
    assert (current.first, current.last) == (date(2026, 12, 1), date(2026, 12, 4))
    # The history starts on July 1, 2012, the month's first day.
    assert parse_month("2012-07", NOW).first == date(2012, 7, 1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2025-13", ["MONTH='2025-13' is not a month", "YYYY-MM"]),
        ("last month", ["MONTH='last month' is not a month", "YYYY-MM"]),
        ("2025-6", ["is not a month"]),
        ("2012-06", ["MONTH=2012-06 is before the data starts (2012-07-01)", "MONTH=2012-07"]),
        ("2027-01", ["MONTH=2027-01 is in the future", "2026-12-04"]),
    ],
)
def test_a_wrong_month_is_refused_in_one_sentence(text: str, words: list[str]) -> None:
    with pytest.raises(UsageError) as refused:
        parse_month(text, NOW)
    message = str(refused.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2025-02-30", ["PARTITION=2025-02-30 is not a day of the calendar"]),
        ("2025-2-3", ["PARTITION='2025-2-3' is not a day", "YYYY-MM-DD"]),
        ("yesterday", ["PARTITION='yesterday' is not a day"]),
        ("2012-06-30", ["before the data starts (2012-07-01)", "PARTITION=2012-07-01"]),
        ("2026-12-05", ["PARTITION=2026-12-05 is in the future", "2026-12-04"]),
    ],
)
def test_a_wrong_day_is_refused_in_one_sentence(text: str, words: list[str]) -> None:
    with pytest.raises(UsageError) as refused:
        parse_day("PARTITION", text, NOW)
    for word in words:
        assert word in str(refused.value)


def test_a_range_is_both_ends_and_from_after_to_is_refused() -> None:
    days = parse_range("2024-01-30", "2024-03-01", NOW)
    assert (days.first, days.last, days.count, days.month) == (
        date(2024, 1, 30),
        date(2024, 3, 1),
        32,
        None,
    )
    assert parse_range("2024-01-30", "2024-01-30", NOW).count == 1
    with pytest.raises(UsageError, match="FROM=2024-03-01 is after TO=2024-02-01"):
        parse_range("2024-03-01", "2024-02-01", NOW)
    with pytest.raises(UsageError, match="TO='2024-02' is not a day"):
        parse_range("2024-01-01", "2024-02", NOW)
