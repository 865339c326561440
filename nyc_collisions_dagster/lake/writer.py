"""Many day files written at once from a few threads, reported one by one as they are written."""

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import pyarrow as pa

from nyc_collisions_dagster.lake.storage import PartitionStore, StorageError

_PROGRESS_EVERY_SECONDS = 10.0
# Failed writes in a row, none written between them, after which a range stops: whatever the
# cause, the storage is refusing every write, and each would spend its retries to learn it.
STOP_AFTER_FAILED_IN_A_ROW = 5


class ParallelWriter:
    """Writes files from a few threads, never holding more than a few days in memory, and tells
    which are written as they complete: `on_written` is called, on the writing thread, as each
    file is done."""

    def __init__(
        self,
        store: PartitionStore,
        threads: int,
        log: logging.Logger,
        expected: int,
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.rows: dict[str, int] = {}  # every file submitted
        self.digests: dict[str, str] = {}  # every file written
        # Files that could not be written, for a cause the other days may escape (a 503 after
        # the S3 client's retries): the run writes the others, then fails naming these.
        self.failed: dict[str, StorageError] = {}
        self._failed_in_a_row = 0
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="parquet")
        self._pending: dict[Future[str], str] = {}
        self._untold: list[str] = []  # written, not yet returned by written()
        self._limit = threads * 2
        self._log = log
        self._expected = expected
        self._on_written = on_written
        self._started = self._last_log = time.monotonic()

    def submit(self, key: str, table: pa.Table) -> None:
        while len(self._pending) >= self._limit:
            self._collect(wait(self._pending, return_when=FIRST_COMPLETED).done)
        self.rows[key] = table.num_rows
        future = self._pool.submit(self.store.write, key, table)
        self._pending[future] = key
        future.add_done_callback(lambda _: self._on_written())
        self._maybe_log_progress()

    def written(self) -> list[str]:
        """The files written since the last call, without waiting for the others."""
        self._collect({future for future in self._pending if future.done()})
        told, self._untold = self._untold, []
        return told

    def finish(self) -> list[str]:
        """Wait for every file submitted; the files written since the last call."""
        self._collect(wait(self._pending).done)
        return self.written()

    def abandon(self) -> list[str]:
        """After a failure: drop the files not started, wait for those being written, and return
        the files written since the last call. A file that failed is left out, unreported: the
        failure that brought us here is the one to raise."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for future, key in self._pending.items():
            if not future.cancelled() and future.exception() is None:
                self.digests[key] = future.result()
                self._untold.append(key)
        self._pending.clear()
        return self.written()

    def __enter__(self) -> "ParallelWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def elapsed(self) -> float:
        return max(time.monotonic() - self._started, 1e-6)

    def _collect(self, done: set[Future[str]]) -> None:
        """Take the results of `done`; raise the first failure that every write would meet."""
        stopping = []
        for future in done:
            key = self._pending.pop(future)
            try:
                self.digests[key] = future.result()
            except StorageError as exc:
                self._failed_in_a_row += 1
                if exc.every_write:
                    stopping.append(exc)
                elif self._failed_in_a_row >= STOP_AFTER_FAILED_IN_A_ROW:
                    stopping.append(
                        StorageError(f"{self._failed_in_a_row} writes failed in a row: {exc}", True)
                    )
                else:
                    self.failed[key] = exc
                    self._log.warning(f"{exc}. The run goes on with the other days.")
            else:
                self._failed_in_a_row = 0
                self._untold.append(key)
        if stopping:
            raise stopping[0]

    def _maybe_log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_log < _PROGRESS_EVERY_SECONDS:
            return
        self._last_log = now
        rows = sum(self.rows.values())
        self._log.info(
            f"{len(self.rows)}/{self._expected} days, {rows:,} rows, "
            f"{rows / (now - self._started):,.0f} rows/s"
        )
