"""Fetch a window of crash days as one typed Arrow table per day, with memory bounded by pages.

The window is cut into chunks of whole days holding about one page of rows each (from one grouped
count query). Pages are downloaded concurrently into temporary files, which frees Socrata's
connection at network speed; a few of them at a time are parsed as CSV in blocks, typed block by
block, and every finished day goes to the consumer through a bounded queue. Within a chunk, pages
follow a keyset on (crash_date, unique key): unlike offset paging it cannot skip or repeat rows
when the source changes mid-run, and a broken download resumes after the last row taken.
"""

import csv
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from nyc_collisions_dagster.constants import Dataset
from nyc_collisions_dagster.raw.report import FetchReport
from nyc_collisions_dagster.raw.schema import DROPPED_COLUMNS, SCHEMAS, TypingReport, to_typed
from nyc_collisions_dagster.socrata.client import SocrataClient, day_window_where, soql_timestamp
from nyc_collisions_dagster.socrata.errors import SocrataError

_EPOCH = date(1970, 1, 1)
_QUEUE_DAYS = 64  # finished days waiting for the writer; bounds memory with the pages parsed
# Pages parsed at once. Parsing runs at several times the speed of the uploads it feeds, and
# every parser holds a block and a partial day in memory, so a few are enough.
_PARSERS = 2
# Each parser reads one block at a time: small blocks keep that working set small
# (24 months with 8 parsers: 256 KB blocks grew peak RSS 1.4x over 1 month, 128 KB 1.24x).
_CSV_BLOCK_BYTES = 128 * 1024
_RAMP = (1 / 8, 1 / 4, 1 / 2)  # sizes of the first chunks, in pages
_MAX_DAY_ROWS = 5_000  # more rows than any dataset has had in a day (persons peak near 4,000)


@dataclass(frozen=True)
class _Failure:
    error: BaseException


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


def _use_a_returning_allocator() -> None:
    """Make jemalloc Arrow's allocator in this process, where it is available.

    Arrow's default, mimalloc, keeps about 15 MB per thread that has parsed CSV, so memory would
    grow with the fetching threads in use, i.e. with the length of the range; jemalloc gives it
    back (measured with 8 threads: +30 MB instead of +120 MB).
    """
    with suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        # Freed pages go back at once, not after jemalloc's decay time: a 24-month range peaked
        # at 360-374 MB instead of 396-410 MB, for about 1 s more system time over 4 years.
        pa.jemalloc_set_decay_ms(0)


class DayStream:
    """Every crash day of [start, end) of one dataset, once each, in no particular order."""

    def __init__(
        self,
        client: SocrataClient,
        dataset: Dataset,
        start: date,
        end: date,
        log: logging.Logger,
    ) -> None:
        self.client = client
        self.log = log
        self.dataset = dataset
        self.schema = SCHEMAS[dataset.asset]
        self.start = start
        self.end = end
        self.report = FetchReport(dataset.asset, dataset.unique_key)
        self._typing_lock = threading.Lock()
        self._counts: Future[dict[date, int]] | None = None
        self.parsing = threading.BoundedSemaphore(_PARSERS)

    def source_counts(self) -> dict[date, int]:
        """Socrata's rows per day, waiting for the count query if it is still out."""
        assert self._counts is not None, "the stream has not started"
        return self._counts.result()

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __iter__(self) -> Iterator[tuple[date, pa.Table]]:
        for arrival in self.arrivals(idle_seconds=None):
            if arrival is not None:
                yield arrival

    def arrivals(self, idle_seconds: float | None) -> Iterator[tuple[date, pa.Table] | None]:
        """Every day as it arrives, and None after each `idle_seconds` without one: a consumer
        that waits on other work too (the writer's uploads) gets its turn while a slow page is
        still being served."""
        _use_a_returning_allocator()
        days: queue.Queue[tuple[date, pa.Table] | _Failure] = queue.Queue(_QUEUE_DAYS)
        stop = threading.Event()
        # Each thread holds at most one downloaded page: max_workers downloading (the client
        # enforces that), as many downloaded and waiting for a parser or being parsed.
        pool = ThreadPoolExecutor(2 * self.client.max_workers, thread_name_prefix="socrata")
        self._counts = pool.submit(count_by_day, self.client, self.dataset, self.start, self.end)
        try:
            if self.days * _MAX_DAY_ROWS <= self.client.page_size:
                # A short window (the daily run) is one page: fetched beside its count, not after.
                chunks = [(self.start, self.end)]
            else:
                counts = self._counts.result()
                chunks = plan_chunks(self.start, self.end, counts, self.client.page_size)
            for chunk in chunks:
                pool.submit(self._run_chunk, *chunk, days, stop)
            received = 0
            while received < self.days:
                try:
                    item = days.get(timeout=idle_seconds)
                except queue.Empty:
                    yield None
                    continue
                received += 1
                if isinstance(item, _Failure):
                    raise item.error
                self.report.record(*item)
                yield item
            self.report.source_counts = self._counts.result()
            self.report.log_findings(self.log, self.client.stats)
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            self.client.close()

    def _run_chunk(self, start: date, end: date, days: queue.Queue, stop: threading.Event) -> None:
        def emit(item: tuple[date, pa.Table] | _Failure) -> None:
            while not stop.is_set():
                try:
                    days.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue
            raise _Stopped

        try:
            _ChunkFetch(self, start, end, emit, stop).run()
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it in the run
            with suppress(_Stopped):
                emit(_Failure(exc))

    def metadata(self) -> dict[str, object]:
        return self.report.metadata(self.client.stats)

    def merge_typing(self, typing: TypingReport) -> None:
        with self._typing_lock:
            self.report.typing.coerced.update(typing.coerced)
            self.report.typing.missing_columns |= typing.missing_columns
            self.report.typing.unknown_columns |= typing.unknown_columns


class _Stopped(Exception):
    """The consumer has gone: stop fetching."""


class _ChunkFetch:
    """Keyset paging over one chunk of days, emitting each day as soon as it is complete."""

    def __init__(
        self,
        stream: DayStream,
        start: date,
        end: date,
        emit: Callable[[tuple[date, pa.Table]], None],
        stop: threading.Event,
    ) -> None:
        self.stream = stream
        self.key = stream.dataset.unique_key
        self.start, self.end = start, end
        self.emit = emit
        self.stop = stop
        self.open_day = start  # the day whose rows are being gathered; all before it are emitted
        self.open_parts: list[pa.Table] = []
        self.cursor: tuple[date, int] | None = None  # the last row received
        self.taken = 0
        self.typing = TypingReport()

    def run(self) -> None:
        client = self.stream.client
        what = f"reading {self.stream.dataset.asset} {self.start}..{self.end}"
        while True:
            if self.stop.is_set():  # the consumer has failed or gone: no more downloads
                raise _Stopped
            received = client.retrying(self._read_page, what)
            # A short page ends the chunk, unless the count promised more: a server that caps
            # $limit below page_size must not cost rows.
            if received == 0 or (received < client.page_size and self.taken >= self._expected()):
                break
        self._close_days_before(self.end)
        self.stream.merge_typing(self.typing)

    def _expected(self) -> int:
        counts = self.stream.source_counts()
        return sum(rows for day, rows in counts.items() if self.start <= day < self.end)

    def _read_page(self) -> int:
        """One request from the cursor on; returns the rows it gave."""
        client = self.stream.client
        where = day_window_where(self.start, self.end)
        if self.cursor is not None:
            day, key = self.cursor
            where += (
                f" AND crash_date >= {soql_timestamp(day)}"
                f" AND (crash_date > {soql_timestamp(day)} OR {self.key} > {key})"
            )
        params = {
            "$where": where,
            "$order": f"crash_date, {self.key}",
            "$limit": str(client.page_size),
        }
        received = 0
        with client.spool(self.stream.dataset.dataset_id, "csv", params) as page:
            with self.stream.parsing:
                for table in self._typed_blocks(page):
                    self._take(table)
                    received += table.num_rows
        return received

    def _typed_blocks(self, page: IO[bytes]) -> Iterator[pa.Table]:
        header_line = page.readline().decode("utf-8")
        if not header_line.strip():
            return
        header = next(csv.reader([header_line]))
        known = [name for name in header if name in self.stream.schema.names]
        self.typing.unknown_columns.update(set(header) - set(known) - DROPPED_COLUMNS)
        if not page.read(1):  # the header was all of it
            return
        page.seek(-1, 1)
        reader = pa_csv.open_csv(
            page,
            read_options=pa_csv.ReadOptions(
                column_names=header, use_threads=False, block_size=_CSV_BLOCK_BYTES
            ),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                include_columns=known,
                column_types={name: pa.string() for name in header},
                strings_can_be_null=True,
                # Socrata quotes every value and leaves nulls unquoted: "" is an empty string.
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            yield to_typed(pa.Table.from_batches([batch]), self.stream.schema, self.typing)

    def _take(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        key_column = table.column(self.key)
        if key_column.null_count:
            raise SocrataError(f"{self.stream.dataset.asset}: Socrata sent rows without {self.key}")
        days = table.column("crash_date").to_numpy().astype("datetime64[D]").astype(np.int64)
        keys = key_column.to_numpy()
        self._check_order(days, keys)
        self.cursor = (_EPOCH + timedelta(days=int(days[-1])), int(keys[-1]))
        self.taken += table.num_rows
        # Rows arrive sorted by day, so each day is one contiguous slice of the block.
        bounds = np.flatnonzero(np.diff(days)) + 1
        for lo, hi in zip(np.concatenate(([0], bounds)), np.concatenate((bounds, [len(days)]))):
            self._close_days_before(_EPOCH + timedelta(days=int(days[lo])))
            self.open_parts.append(table.slice(lo, hi - lo))

    def _check_order(self, days: np.ndarray, keys: np.ndarray) -> None:
        day_steps, key_steps = np.diff(days), np.diff(keys)
        in_order = bool(np.all((day_steps > 0) | ((day_steps == 0) & (key_steps > 0))))
        first = (_EPOCH + timedelta(days=int(days[0])), int(keys[0]))
        last_day = _EPOCH + timedelta(days=int(days[-1]))
        after_cursor = self.cursor is None or first > self.cursor
        if not (in_order and after_cursor and self.start <= first[0] and last_day < self.end):
            raise SocrataError(
                f"{self.stream.dataset.asset}: Socrata returned rows outside the requested order "
                f"or window {self.start}..{self.end}; refusing to page on an unstable order"
            )

    def _close_days_before(self, day: date) -> None:
        """Emit the open day and every empty day up to `day`."""
        while self.open_day < day:
            parts = self.open_parts or [self.stream.schema.empty_table()]
            self.emit((self.open_day, pa.concat_tables(parts)))
            self.open_parts = []
            self.open_day += timedelta(days=1)
