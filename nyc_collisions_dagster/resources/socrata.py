"""The Socrata resource: a sodapy client with bounded retries, clear errors and request counters."""

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import IO, TypeVar

import dagster as dg
import requests
import sodapy
from pydantic import Field
from requests.adapters import HTTPAdapter
from sodapy import utils as sodapy_utils
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from nyc_collisions_dagster.constants import (
    DEFAULT_SOCRATA_DOMAIN,
    SOCRATA_APP_TOKEN_ENV,
    SOCRATA_DOMAIN_ENV,
)

T = TypeVar("T")

# Failures that happen while a response body streams in. urllib3's Retry only covers the request
# up to the headers, so these are retried here, from where the stream broke.
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, Urllib3Error, OSError)
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_SPOOL_READ_BYTES = 64 * 1024


class SocrataError(RuntimeError):
    """Socrata refused a request, or stayed unavailable after every retry."""


class SpoolError(RuntimeError):
    """A downloaded page could not be kept in a temporary file: a local problem, not retried."""


def _spool_failure(exc: OSError) -> str:
    return f"Cannot keep a downloaded page in the temporary folder {tempfile.gettempdir()}: {exc}"


def _temporary_file() -> IO[bytes]:
    try:
        return tempfile.TemporaryFile(prefix="socrata-page-")
    except OSError as exc:
        raise SpoolError(_spool_failure(exc)) from None


class RequestStats:
    """Thread-safe counters of what a run asked of Socrata."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.bytes = 0

    def add(self, requests: int = 0, retries: int = 0, bytes: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.bytes += bytes


def split_domain(domain: str) -> tuple[str, str]:
    """`http://127.0.0.1:8123/` -> ("http://", "127.0.0.1:8123"); a bare host means https."""
    scheme, sep, host = domain.strip().rstrip("/").partition("://")
    return (f"{scheme}://", host) if sep else ("https://", scheme)


def soql_timestamp(day: date) -> str:
    """A quoted SoQL floating timestamp; built from a parsed date, never from user text."""
    return f"'{day.isoformat()}T00:00:00'"


def day_window_where(start: date, end: date) -> str:
    """Rows whose crash_date is in the half-open day range [start, end)."""
    return f"crash_date >= {soql_timestamp(start)} AND crash_date < {soql_timestamp(end)}"


class SocrataClient:
    """A sodapy session shared by the threads of one run, with the error handling sodapy lacks."""

    def __init__(self, resource: "SocrataResource", domain: str, app_token: str | None) -> None:
        prefix, self.host = split_domain(domain)
        retry = Retry(
            total=resource.max_retries,
            backoff_factor=resource.backoff_factor,
            backoff_max=resource.max_backoff_seconds,
            # A server asking for an hour must not stall a run; Retry-After: 0 gets the backoff.
            retry_after_max=int(resource.max_backoff_seconds),
            status_forcelist=_RETRIED_STATUSES,
            allowed_methods={"GET"},
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(
            max_retries=retry,
            pool_connections=1,
            pool_maxsize=max(resource.max_workers, 4),
        )
        self._socrata = sodapy.Socrata(
            self.host,
            app_token,
            session_adapter={"prefix": prefix, "adapter": adapter},
            timeout=resource.read_timeout_seconds,
        )
        self._timeout = (resource.connect_timeout_seconds, resource.read_timeout_seconds)
        self._max_retries = resource.max_retries
        self._backoff = resource.backoff_factor
        self._max_backoff = resource.max_backoff_seconds
        self.page_size = resource.page_size
        self.max_workers = resource.max_workers
        self._in_flight = threading.BoundedSemaphore(resource.max_workers)
        self.stats = RequestStats()

    def close(self) -> None:
        self._socrata.close()

    @contextmanager
    def open(
        self, dataset_id: str, fmt: str, params: dict[str, str]
    ) -> Iterator[requests.Response]:
        """A streaming GET of `/resource/{dataset_id}.{fmt}`; raises SocrataError unless 200.

        At most `max_workers` responses are open at once, whichever threads ask.
        """
        url = (
            self._socrata.uri_prefix
            + self.host
            + sodapy_utils.format_new_api_request(dataid=dataset_id, content_type=fmt)
        )
        with self._in_flight:
            try:
                response = self._socrata.session.get(
                    url, params=params, timeout=self._timeout, stream=True
                )
            except requests.RequestException as exc:
                # urllib3 has already spent its retries on connection errors and time-outs.
                raise SocrataError(
                    f"Socrata at {self.host} could not be reached for dataset {dataset_id} "
                    f"after {self._max_retries} retries: {type(exc).__name__}: {exc}"
                ) from None
            try:
                history = response.raw.retries.history if response.raw.retries else ()
                self.stats.add(requests=1 + len(history), retries=len(history))
                if response.status_code != 200:
                    raise self._error(dataset_id, response, retried=len(history))
                yield response
            finally:
                self.stats.add(bytes=response.raw.tell())
                response.close()

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
        """A small JSON query (counts, groups), retried as a whole on transport failures."""

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

    def _error(self, dataset_id: str, response: requests.Response, retried: int) -> SocrataError:
        status = response.status_code
        try:
            body = response.json()
            code = body.get("errorCode") or body.get("code") or "error"
            message = body.get("message") or response.reason
        except ValueError:
            code, message = "error", response.text[:300] or response.reason
        hint = {
            401: " Check SOCRATA_APP_TOKEN.",
            403: " Check SOCRATA_APP_TOKEN: Socrata refuses an invalid app token.",
            404: f" Is {dataset_id} a dataset on {self.host}?",
        }.get(status, "")
        after = f" after {retried} retries" if status in _RETRIED_STATUSES else ""
        return SocrataError(
            f"Socrata at {self.host} answered HTTP {status}{after} for dataset {dataset_id}: "
            f"{code}: {message}.{hint}"
        )


class SocrataResource(dg.ConfigurableResource):
    """NYC Open Data's Socrata API, read with sodapy through a retrying session.

    `domain` and `app_token` fall back to SOCRATA_DOMAIN and SOCRATA_APP_TOKEN at run time, so an
    unset variable means the default rather than an error.
    """

    domain: str | None = Field(
        default=None,
        description=f"Socrata host, optionally with a scheme (http://127.0.0.1:8123). "
        f"Unset: ${SOCRATA_DOMAIN_ENV}, else {DEFAULT_SOCRATA_DOMAIN}.",
    )
    app_token: str | None = Field(
        default=None,
        description=f"Sent as X-App-Token for higher rate limits. Unset: ${SOCRATA_APP_TOKEN_ENV}.",
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

    def get_client(self) -> SocrataClient:
        domain = self.domain or dg.EnvVar(SOCRATA_DOMAIN_ENV).get_value() or DEFAULT_SOCRATA_DOMAIN
        app_token = self.app_token or dg.EnvVar(SOCRATA_APP_TOKEN_ENV).get_value() or None
        return SocrataClient(self, domain, app_token)
