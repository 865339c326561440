"""The raw days a processed run reads: which days a month holds, and reading them a month ahead."""

import calendar
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date

import pyarrow as pa

from nyc_collisions_dagster.lake.storage import PartitionStore
from nyc_collisions_dagster.listing import first_and_more
from nyc_collisions_dagster.raw.schema import SCHEMAS

# Day files read at once. Each read is a few small requests (footer, column chunks), so on S3
# latency, not bandwidth, bounds it: many small reads in flight keep it busy.
_READERS = 16


class MissingRawDays(RuntimeError):
    """A month's raw days are not all in the lake: writing it would publish a partial month."""


def month_days(month: str, last_day: date) -> list[date]:
    """The days of `month` (YYYY-MM) that are raw partitions, i.e. not after `last_day`."""
    year, number = map(int, month.split("-"))
    days = (date(year, number, d) for d in range(1, calendar.monthrange(year, number)[1] + 1))
    return [day for day in days if day <= last_day]


def require_landed(days: Sequence[date], landed: Mapping[str, set[date]]) -> None:
    """Fail, naming them, if any of `days` has no raw file in one of the datasets."""
    missing = {name: sorted(set(days) - found) for name, found in landed.items()}
    if not any(missing.values()):
        return
    lines = []
    for name, gaps in missing.items():
        if gaps:
            lines.append(f"{name}: {len(gaps)} days ({first_and_more(gaps)})")
    raise MissingRawDays(
        "Raw days are missing, so no month was written; materialize them first: " + "; ".join(lines)
    )


def read_months(
    stores: Mapping[str, PartitionStore],
    columns: Mapping[str, list[str] | None],
    months: Sequence[tuple[str, list[date]]],
) -> Iterator[tuple[str, dict[str, pa.Table]]]:
    """Each month's raw tables by dataset, in order; the next month is read while one is used.

    Memory holds two months at most, whatever the length of the range.
    """
    with ThreadPoolExecutor(_READERS, thread_name_prefix="raw-reader") as pool:

        def submit(days: list[date]) -> dict[str, list[Future[pa.Table]]]:
            return {
                name: [pool.submit(store.read_one, day.isoformat(), columns[name]) for day in days]
                for name, store in stores.items()
            }

        try:
            ahead = submit(months[0][1]) if months else {}
            for index, (month, _) in enumerate(months):
                current = ahead
                if index + 1 < len(months):
                    ahead = submit(months[index + 1][1])
                yield (
                    month,
                    {
                        name: _concat([f.result() for f in futures], name, columns[name])
                        for name, futures in current.items()
                    },
                )
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _concat(tables: list[pa.Table], name: str, columns: list[str] | None) -> pa.Table:
    if tables:
        return pa.concat_tables(tables)
    empty = SCHEMAS[name].empty_table()  # a month with no days yet: the 1st of the current month
    return empty.select(columns) if columns else empty
