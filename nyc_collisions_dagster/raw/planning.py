"""How a window of crash days is fetched: chunks of whole days of about a page each, and the
keyset query of each page. Pure functions, apart from the one count query the plan rests on.

Within a chunk, pages follow a keyset on (crash_date, unique key): unlike offset paging it cannot
skip or repeat rows when the source changes mid-run, and a broken download resumes after the last
row taken.
"""

from datetime import date, timedelta

from nyc_collisions_dagster.constants import Dataset
from nyc_collisions_dagster.socrata.client import SocrataClient, day_window_where, soql_timestamp

_RAMP = (1 / 8, 1 / 4, 1 / 2)  # sizes of the first chunks, in pages
MAX_DAY_ROWS = 5_000  # more rows than any dataset has had in a day (persons peak near 4,000)


def count_by_day(
    client: SocrataClient, dataset: Dataset, start: date, end: date
) -> dict[date, int]:
    """Socrata's rows per crash day of [start, end), from one grouped count(*) query."""
    rows = client.query(
        dataset.dataset_id,
        {
            "$select": "crash_date, count(*) AS row_count",
            "$where": day_window_where(start, end),
            "$group": "crash_date",
            "$limit": str((end - start).days + 1),
        },
    )
    return {date.fromisoformat(r["crash_date"][:10]): int(r["row_count"]) for r in rows}


def fits_one_page(start: date, end: date, page_size: int) -> bool:
    """A short window (the daily run) is one page, fetched beside its count rather than after."""
    return (end - start).days * MAX_DAY_ROWS <= page_size


def plan_chunks(
    start: date, end: date, counts: dict[date, int], rows: int
) -> list[tuple[date, date]]:
    """Cut [start, end) into contiguous day ranges of at most about `rows` rows each.

    The first chunks ramp up (1/8, 1/4, 1/2 of a page): they are requested together, and a small
    page is served sooner, so the writer starts on the first days after a fraction of a full
    page's serving time. The rows left after the ramp are shared evenly by the fewest pages.
    """
    chunks: list[tuple[date, date]] = []
    remaining = sum(counts.values())
    chunk_start, filled, day = start, 0, start
    target = _chunk_target(0, remaining, rows)
    while day < end:
        filled += counts.get(day, 0)
        day += timedelta(days=1)
        if filled and (filled >= target or filled + counts.get(day, 0) > rows):
            chunks.append((chunk_start, day))
            remaining -= filled
            chunk_start, filled = day, 0
            target = _chunk_target(len(chunks), remaining, rows)
    if chunk_start < end:
        if chunks and filled == 0:  # trailing days without rows need no request of their own
            chunks[-1] = (chunks[-1][0], end)
        else:
            chunks.append((chunk_start, end))
    return chunks


def _chunk_target(index: int, remaining: int, rows: int) -> float:
    balanced = remaining / max(1, -(-remaining // rows))
    return min(balanced, rows * _RAMP[index]) if index < len(_RAMP) else balanced


def page_params(
    dataset: Dataset, start: date, end: date, cursor: tuple[date, int] | None, limit: int
) -> dict[str, str]:
    """The query of the page after `cursor` (the last row taken) in the chunk [start, end)."""
    key = dataset.unique_key
    where = day_window_where(start, end)
    if cursor is not None:
        day, last = cursor
        where += (
            f" AND crash_date >= {soql_timestamp(day)}"
            f" AND (crash_date > {soql_timestamp(day)} OR {key} > {last})"
        )
    return {"$where": where, "$order": f"crash_date, {key}", "$limit": str(limit)}
