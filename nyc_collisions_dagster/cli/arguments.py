"""What the make targets are asked to land, read from MONTH, PARTITION, FROM and TO.

Each mistake is refused before Dagster starts, with one sentence naming the setting to fix.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from nyc_collisions_dagster.constants import START_DATE
from nyc_collisions_dagster.partitions import daily_partitions

FIRST_DAY = date.fromisoformat(START_DATE)


class UsageError(ValueError):
    """A setting of the command that cannot be run; the message says how to fix it."""


@dataclass(frozen=True)
class Days:
    """The crash days of one ranged run, both ends included, and the month they make, if any."""

    first: date
    last: date
    month: str | None = None

    @property
    def count(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def partition_range(self) -> str:
        return f"{self.first}...{self.last}"


def last_day(now: datetime | None = None) -> date:
    """The newest day partition: the last complete day in the partitions' time zone."""
    today = (now or datetime.now(timezone.utc)).astimezone(ZoneInfo(daily_partitions.timezone))
    return today.date() - timedelta(days=1)


def last_month(now: datetime | None = None) -> str:
    """The last complete month in New York, as YYYY-MM."""
    today = last_day(now) + timedelta(days=1)
    return f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"


def parse_day(name: str, text: str, now: datetime | None = None) -> date:
    """A crash day given as YYYY-MM-DD, within the history."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise UsageError(f"{name}={text!r} is not a day: give it as YYYY-MM-DD, e.g. 2024-02-01.")
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{name}={text} is not a day of the calendar: give a real date as YYYY-MM-DD."
        ) from None
    _check_within(name, text, day, day, now, f"{FIRST_DAY}")
    return day


def parse_month(text: str, now: datetime | None = None) -> Days:
    """A crash month given as YYYY-MM; the current month runs up to its last complete day."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise UsageError(f"MONTH={text!r} is not a month: give it as YYYY-MM, e.g. MONTH=2024-02.")
    first = date(int(match.group(1)), int(match.group(2)), 1)
    end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    _check_within("MONTH", text, max(first, FIRST_DAY), end, now, f"{FIRST_DAY:%Y-%m}")
    return Days(max(first, FIRST_DAY), min(end, last_day(now)), month=text.strip())


def parse_range(start: str, end: str, now: datetime | None = None) -> Days:
    """The days FROM..TO, both included."""
    first, last = parse_day("FROM", start, now), parse_day("TO", end, now)
    if first > last:
        raise UsageError(f"FROM={first} is after TO={last}: give FROM on or before TO.")
    return Days(first, last)


def _check_within(
    name: str, text: str, first: date, last: date, now: datetime | None, earliest: str
) -> None:
    if last < FIRST_DAY:
        raise UsageError(
            f"{name}={text} is before the data starts ({FIRST_DAY}): give {name}={earliest} "
            "or later."
        )
    newest = last_day(now)
    if first > newest:
        raise UsageError(
            f"{name}={text} is in the future: the last complete crash day is {newest}."
        )
