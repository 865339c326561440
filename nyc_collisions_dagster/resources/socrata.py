"""The Socrata resource: a sodapy session on SODA 2.1 or SODA3, with bounded retries, clear
errors and request counters."""

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import IO, TypeVar

import dagster as dg
import requests
from pydantic import Field

from nyc_collisions_dagster.constants import (
    DEFAULT_SOCRATA_DOMAIN,
    SOCRATA_API_ENV,
    SOCRATA_APP_TOKEN_ENV,
    SOCRATA_DOMAIN_ENV,
)
from nyc_collisions_dagster.resources import soda3
from nyc_collisions_dagster.resources.answers import RequestStats, SocrataError
from nyc_collisions_dagster.resources.retries import TRANSIENT_ERRORS
from nyc_collisions_dagster.resources.transport import Transport, split_domain

T = TypeVar("T")

APIS = ("auto", "soda2", "soda3")
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

    def __init__(
        self,
        resource: "SocrataResource",
        domain: str,
        app_token: str | None,
        api: str,
        log: logging.Logger,
    ) -> None:
        self.stats = RequestStats()
        self._transport = Transport(resource, domain, app_token, api, log, self.stats)
        self.host = self._transport.host
        self._max_retries = resource.max_retries
        self._backoff = resource.backoff_factor
        self._max_backoff = resource.max_backoff_seconds
        self.page_size = resource.page_size
        self.max_workers = resource.max_workers
        self._in_flight = threading.BoundedSemaphore(resource.max_workers)

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


class SocrataResource(dg.ConfigurableResource):
    """NYC Open Data's Socrata API, read through a retrying sodapy session, on SODA 2.1 or SODA3.

    `domain`, `app_token` and `api` fall back to SOCRATA_DOMAIN, SOCRATA_APP_TOKEN and
    SOCRATA_API at run time, so an unset variable means the default rather than an error.
    """

    domain: str | None = Field(
        default=None,
        description=f"Socrata host, optionally with a scheme (http://127.0.0.1:8123). "
        f"Unset: ${SOCRATA_DOMAIN_ENV}, else {DEFAULT_SOCRATA_DOMAIN}.",
    )
    app_token: str | None = Field(
        default=None,
        description=f"Sent as X-App-Token for higher rate limits; SODA3 requires one. "
        f"Unset: ${SOCRATA_APP_TOKEN_ENV}.",
    )
    api: str | None = Field(
        default=None,
        description="auto: SODA 2.1 while /resource/ answers, then SODA3 for the rest of the run; "
        f"soda2 or soda3 pins one. Unset: ${SOCRATA_API_ENV}, else auto.",
    )
    page_size: int = Field(default=50_000, gt=0, description="Rows per request ($limit).")
    max_workers: int = Field(
        default=8,
        gt=0,
        description="Requests in flight at once: 1 fetches pages one after another.",
    )
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = Field(
        default=120.0, description="Longest wait for the next bytes of a response."
    )
    max_retries: int = Field(default=6, ge=0, description="Retries per request before failing.")
    backoff_factor: float = 0.5
    max_backoff_seconds: float = 30.0

    def get_client(self, log: logging.Logger | None = None) -> SocrataClient:
        """A client for one step or tick; `log` is told if it moves from SODA 2.1 to SODA3."""
        domain = self.domain or dg.EnvVar(SOCRATA_DOMAIN_ENV).get_value() or DEFAULT_SOCRATA_DOMAIN
        app_token = self.app_token or dg.EnvVar(SOCRATA_APP_TOKEN_ENV).get_value() or None
        api = self.api or dg.EnvVar(SOCRATA_API_ENV).get_value() or "auto"
        if api not in APIS:
            raise SocrataError(
                f"The Socrata API setting ({SOCRATA_API_ENV}, or the socrata resource's api) "
                f"must be one of {', '.join(APIS)}, not {api!r}."
            )
        if api == "soda3" and not app_token:
            raise SocrataError(soda3.token_required(split_domain(domain)[1]))
        return SocrataClient(self, domain, app_token, api, log or _LOG)
