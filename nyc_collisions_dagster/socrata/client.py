"""The Socrata client: a sodapy session on SODA 2.1 or SODA3, with bounded retries, clear errors,
request counters and pages spooled to temporary files."""

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import IO, TypeVar

import requests

from nyc_collisions_dagster.socrata import soda3
from nyc_collisions_dagster.socrata.errors import RequestStats, SocrataError
from nyc_collisions_dagster.socrata.retries import TRANSIENT_ERRORS
from nyc_collisions_dagster.socrata.settings import SocrataSettings
from nyc_collisions_dagster.socrata.transport import Transport, split_domain

T = TypeVar("T")

_SPOOL_READ_BYTES = 64 * 1024
_LOG = logging.getLogger(__name__)


class SpoolError(RuntimeError):
    """A downloaded page could not be kept in a temporary file: a local problem, not retried."""


def _spool_failure(exc: OSError) -> str:
    return f"Cannot keep a downloaded page in the temporary folder {tempfile.gettempdir()}: {exc}"


def _temporary_file() -> IO[bytes]:
    try:
        return tempfile.TemporaryFile(prefix="socrata-page-")
    except OSError as exc:
        raise SpoolError(_spool_failure(exc)) from None


def soql_timestamp(day: date) -> str:
    """A quoted SoQL floating timestamp; built from a parsed date, never from user text."""
    return f"'{day.isoformat()}T00:00:00'"


def day_window_where(start: date, end: date) -> str:
    """Rows whose crash_date is in the half-open day range [start, end)."""
    return f"crash_date >= {soql_timestamp(start)} AND crash_date < {soql_timestamp(end)}"


class SocrataClient:
    """A session shared by the threads of one run, with the error handling sodapy lacks.

    Queries are written once, as SODA 2.1 parameters ($select, $where, ...), and go to whichever
    API the transport speaks: the rows, and the CSV or JSON they come as, are the same.
    """

    def __init__(self, settings: SocrataSettings, log: logging.Logger | None = None) -> None:
        if settings.api == "soda3" and not settings.app_token:
            raise SocrataError(soda3.token_required(split_domain(settings.domain)[1]))
        self.stats = RequestStats()
        self._transport = Transport(settings, log or _LOG, self.stats)
        self.host = self._transport.host
        self._max_retries = settings.max_retries
        self._backoff = settings.backoff_factor
        self._max_backoff = settings.max_backoff_seconds
        self.page_size = settings.page_size
        self.max_workers = settings.max_workers
        self._in_flight = threading.BoundedSemaphore(settings.max_workers)

    @property
    def api(self) -> str:
        """The API that answers now: soda2 or soda3."""
        return self._transport.api

    def close(self) -> None:
        self._transport.close()

    @contextmanager
    def open(
        self, dataset_id: str, fmt: str, params: dict[str, str]
    ) -> Iterator[requests.Response]:
        """A streaming query of `dataset_id` as `fmt` ("csv" or "json"); raises SocrataError
        unless 200.

        At most `max_workers` responses are open at once, whichever threads ask.
        """
        with self._in_flight:
            response = self._transport.send(dataset_id, fmt, params)
            try:
                if response.status_code != 200:
                    raise self._transport.error(dataset_id, response)
                yield response
            finally:
                self._transport.finish(response)

    def spool(self, dataset_id: str, fmt: str, params: dict[str, str]) -> IO[bytes]:
        """The whole (decoded) response body in an anonymous temporary file, at its start.

        Read at network speed, so the connection and the server's worker are freed at once
        instead of being held for as long as a slower consumer takes to parse the page.
        """
        page = _temporary_file()
        try:
            with self.open(dataset_id, fmt, params) as response:
                for piece in response.raw.stream(_SPOOL_READ_BYTES, decode_content=True):
                    try:
                        page.write(piece)
                    except OSError as exc:
                        raise SpoolError(_spool_failure(exc)) from None
            page.seek(0)
            return page
        except BaseException:
            page.close()
            raise

    def query(self, dataset_id: str, params: dict[str, str]) -> list[dict[str, str]]:
        """A small JSON query (counts, groups), retried as a whole on transport failures.

        Socrata's JSON omits null fields and sends numbers as strings: read values with .get()
        and convert them.
        """

        def run() -> list[dict[str, str]]:
            with self.open(dataset_id, "json", params) as response:
                return response.json()

        return self.retrying(run, f"querying dataset {dataset_id}")

    def retrying(self, attempt: Callable[[], T], what: str) -> T:
        """Run `attempt`, retrying transport failures with capped exponential backoff."""
        failures = 0
        while True:
            try:
                return attempt()
            except TRANSIENT_ERRORS as exc:
                if failures == self._max_retries:
                    raise SocrataError(
                        f"Socrata at {self.host} failed while {what}, "
                        f"{failures} retries spent: {type(exc).__name__}: {exc}"
                    ) from None
                failures += 1
                self.stats.add(retries=1)
                time.sleep(min(self._max_backoff, self._backoff * 2**failures))
