"""The page pump: keyset pages of one chunk of days, downloaded, parsed as CSV block by block,
typed, and handed on a day at a time as soon as each day is complete."""

import csv
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import IO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from nyc_collisions_dagster.constants import Dataset
from nyc_collisions_dagster.raw.planning import page_params
from nyc_collisions_dagster.raw.schema import DROPPED_COLUMNS, TypingReport, to_typed
from nyc_collisions_dagster.socrata.client import SocrataClient
from nyc_collisions_dagster.socrata.errors import SocrataError

_EPOCH = date(1970, 1, 1)
# Each parser reads one block at a time: small blocks keep its working set small.
_CSV_BLOCK_BYTES = 128 * 1024


class Stopped(Exception):
    """The consumer has gone: stop fetching."""


class PageSource(Protocol):
    """What a chunk's pages need of the stream they feed."""

    client: SocrataClient
    dataset: Dataset
    schema: pa.Schema
    parsing: threading.BoundedSemaphore

    def source_counts(self) -> dict[date, int]: ...

    def merge_typing(self, typing: TypingReport) -> None: ...


class ChunkFetch:
    """Keyset paging over one chunk of days, emitting each day as soon as it is complete."""

    def __init__(
        self,
        source: PageSource,
        start: date,
        end: date,
        emit: Callable[[tuple[date, pa.Table]], None],
        stop: threading.Event,
    ) -> None:
        self.source = source
        self.key = source.dataset.unique_key
        self.start, self.end = start, end
        self.emit = emit
        self.stop = stop
        self.open_day = start  # the day whose rows are being gathered; all before it are emitted
        self.open_parts: list[pa.Table] = []
        self.cursor: tuple[date, int] | None = None  # the last row received
        self.taken = 0
        self.typing = TypingReport()

    def run(self) -> None:
        client = self.source.client
        what = f"reading {self.source.dataset.asset} {self.start}..{self.end}"
        while True:
            if self.stop.is_set():  # the consumer has failed or gone: no more downloads
                raise Stopped
            received = client.retrying(self._read_page, what)
            # A short page ends the chunk, unless the count promised more: a server that caps
            # $limit below page_size must not cost rows.
            if received == 0 or (received < client.page_size and self.taken >= self._expected()):
                break
        self._close_days_before(self.end)
        self.source.merge_typing(self.typing)

    def _expected(self) -> int:
        counts = self.source.source_counts()
        return sum(rows for day, rows in counts.items() if self.start <= day < self.end)

    def _read_page(self) -> int:
        """One request from the cursor on; returns the rows it gave."""
        client = self.source.client
        dataset = self.source.dataset
        params = page_params(dataset, self.start, self.end, self.cursor, client.page_size)
        received = 0
        with client.spool(dataset.dataset_id, "csv", params) as page:
            with self.source.parsing:
                for table in self._typed_blocks(page):
                    self._take(table)
                    received += table.num_rows
        return received

    def _typed_blocks(self, page: IO[bytes]) -> Iterator[pa.Table]:
        schema = self.source.schema
        header_line = page.readline().decode("utf-8")
        if not header_line.strip():
            return
        header = next(csv.reader([header_line]))
        known = [name for name in header if name in schema.names]
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
            yield to_typed(pa.Table.from_batches([batch]), schema, self.typing)

    def _take(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        key_column = table.column(self.key)
        if key_column.null_count:
            raise SocrataError(f"{self.source.dataset.asset}: Socrata sent rows without {self.key}")
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
                f"{self.source.dataset.asset}: Socrata returned rows outside the requested order "
                f"or window {self.start}..{self.end}; refusing to page on an unstable order"
            )

    def _close_days_before(self, day: date) -> None:
        """Emit the open day and every empty day up to `day`."""
        while self.open_day < day:
            parts = self.open_parts or [self.source.schema.empty_table()]
            self.emit((self.open_day, pa.concat_tables(parts)))
            self.open_parts = []
            self.open_day += timedelta(days=1)
