"""A window of crash days of one dataset as one typed Arrow table per day, memory bounded by pages.

The window is cut into chunks of about one page each (planning.py). Pages are downloaded
concurrently into temporary files, which frees Socrata's connection at network speed; a few of
them at a time are parsed (pages.py), and every finished day reaches the consumer through a
bounded queue.
"""

import logging
import queue
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from functools import cache

import pyarrow as pa

from nyc_collisions_dagster.constants import Dataset
from nyc_collisions_dagster.raw.pages import ChunkFetch, Stopped
from nyc_collisions_dagster.raw.planning import count_by_day, fits_one_page, plan_chunks
from nyc_collisions_dagster.raw.report import FetchReport
from nyc_collisions_dagster.raw.schema import SCHEMAS, TypingReport
from nyc_collisions_dagster.socrata.client import SocrataClient

_QUEUE_DAYS = 64  # finished days waiting for the writer; bounds memory with the pages parsed
# Pages parsed at once: parsing outruns the uploads it feeds, and each parser holds a block and
# a partial day in memory, so a few are enough.
_PARSERS = 2


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class Woken:
    """What `DayStream.arrivals` yields after `DayStream.wake`: not a day, but a turn for the
    consumer's other work."""


_WOKEN = Woken()


@cache
def use_a_returning_allocator() -> None:
    """Make jemalloc Arrow's allocator in this process, once, where it is available.

    Arrow's default, mimalloc, keeps memory per thread that has parsed CSV, so memory would grow
    with the fetching threads in use; jemalloc gives it back, at once with no decay time.
    """
    with suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())
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
        use_a_returning_allocator()
        self.client = client
        self.log = log
        self.dataset = dataset
        self.schema = SCHEMAS[dataset.asset]
        self.start = start
        self.end = end
        self.report = FetchReport(dataset.asset, dataset.unique_key)
        self._typing_lock = threading.Lock()
        self._counts: Future[dict[date, int]] | None = None
        self._queue: queue.Queue[tuple[date, pa.Table] | _Failure | Woken] = queue.Queue(
            _QUEUE_DAYS
        )
        self.parsing = threading.BoundedSemaphore(_PARSERS)

    def source_counts(self) -> dict[date, int]:
        """Socrata's rows per day, waiting for the count query if it is still out."""
        assert self._counts is not None, "the stream has not started"
        return self._counts.result()

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __iter__(self) -> Iterator[tuple[date, pa.Table]]:
        for arrival in self.arrivals():
            if not isinstance(arrival, Woken):
                yield arrival

    def wake(self) -> None:
        """Give the consumer a turn now, from any thread: the writer calls it as each file is
        written, so that the file's event is recorded while a slow page is still being served.
        A full queue needs no wake: the consumer is about to take a day from it."""
        with suppress(queue.Full):
            self._queue.put_nowait(_WOKEN)

    def has_ready(self) -> bool:
        """Whether the next arrival is there already: the consumer need not wait for it."""
        return not self._queue.empty()

    def arrivals(self) -> Generator[tuple[date, pa.Table] | Woken, None, None]:
        """Every day as it arrives, and a `Woken` after each `wake()`."""
        stop = threading.Event()
        # Each thread holds at most one downloaded page: max_workers downloading (the client
        # enforces that), as many downloaded and waiting for a parser or being parsed.
        pool = ThreadPoolExecutor(2 * self.client.max_workers, thread_name_prefix="socrata")
        self._counts = pool.submit(count_by_day, self.client, self.dataset, self.start, self.end)
        try:
            if fits_one_page(self.start, self.end, self.client.page_size):
                chunks = [(self.start, self.end)]
            else:
                counts = self._counts.result()
                chunks = plan_chunks(self.start, self.end, counts, self.client.page_size)
            for chunk in chunks:
                pool.submit(self._run_chunk, *chunk, stop)
            received = 0
            while received < self.days:
                item = self._queue.get()
                if isinstance(item, Woken):
                    yield item
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

    def _run_chunk(self, start: date, end: date, stop: threading.Event) -> None:
        def emit(item: tuple[date, pa.Table] | _Failure) -> None:
            while not stop.is_set():
                try:
                    self._queue.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue
            raise Stopped

        try:
            ChunkFetch(self, start, end, emit, stop).run()
        except Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it in the run
            with suppress(Stopped):
                emit(_Failure(exc))

    def metadata(self) -> dict[str, object]:
        return self.report.metadata(self.client.stats)

    def merge_typing(self, typing: TypingReport) -> None:
        with self._typing_lock:
            self.report.typing.coerced.update(typing.coerced)
            self.report.typing.missing_columns |= typing.missing_columns
            self.report.typing.unknown_columns |= typing.unknown_columns
