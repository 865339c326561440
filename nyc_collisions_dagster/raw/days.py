"""Sets of crash days as the runs that fetch them: stretches of consecutive days."""

from datetime import date, timedelta

from nyc_collisions_dagster.listing import first_and_more


def contiguous_ranges(days: set[date]) -> list[tuple[date, date]]:
    """[(first, last)] runs of consecutive days, inclusive."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def days_between(first: date, last: date) -> set[date]:
    """Every day from `first` to `last`, inclusive."""
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


def ranges_text(days: set[date]) -> str:
    """`2024-01-01...2024-01-31, 2024-03-05`: the stretches of `days`, the first few named."""
    ranges = contiguous_ranges(days)
    return first_and_more([f"{a}...{b}" if a != b else str(a) for a, b in ranges], "ranges")
