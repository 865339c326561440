"""How a request reaches Socrata: one retrying sodapy session, speaking SODA 2.1 (/resource/) or
SODA3 (/api/v3/views/), and the switch from the first to the second when /resource/ goes."""

import logging
import threading
from collections.abc import Mapping

import requests
import sodapy
from requests.adapters import HTTPAdapter
from sodapy import utils as sodapy_utils

from nyc_collisions_dagster.constants import (
    SOCRATA_API_ENV,
    SOCRATA_APP_TOKEN_ENV,
    SOCRATA_DOMAIN_ENV,
)
from nyc_collisions_dagster.socrata import soda3
from nyc_collisions_dagster.socrata.errors import RequestStats, SocrataError, answer_error
from nyc_collisions_dagster.socrata.retries import (
    RETRIED_STATUSES,
    ReachableRetry,
    unreachable_reason,
)
from nyc_collisions_dagster.socrata.settings import SocrataSettings


def split_domain(domain: str) -> tuple[str, str]:
    """`http://127.0.0.1:8123/` -> ("http://", "127.0.0.1:8123"); a bare host means https."""
    scheme, sep, host = domain.strip().rstrip("/").partition("://")
    return (f"{scheme}://", host) if sep else ("https://", scheme)


class Transport:
    """The session shared by the threads of one client, and the API it speaks now.

    The setting "auto" starts on SODA 2.1 and moves to SODA3, once and for good, when a /resource/
    request is answered 404 or 410 for a dataset SODA3 knows. 5xx answers and time-outs are
    retried where they happened and never move it.
    """

    def __init__(self, settings: SocrataSettings, log: logging.Logger, stats: RequestStats) -> None:
        prefix, self.host = split_domain(settings.domain)
        retry = ReachableRetry(
            total=settings.max_retries,
            backoff_factor=settings.backoff_factor,
            backoff_max=settings.max_backoff_seconds,
            # A server asking for an hour must not stall a run; Retry-After: 0 gets the backoff.
            retry_after_max=int(settings.max_backoff_seconds),
            status_forcelist=RETRIED_STATUSES,
            # SODA3 queries are POSTs (dev.socrata.com/docs/queries), reads all the same.
            allowed_methods={"GET", "POST"},
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(
            max_retries=retry,
            pool_connections=1,
            pool_maxsize=max(settings.max_workers, 4),
        )
        # sodapy sends the app token as the X-App-Token header on every request of the session,
        # the way docs/queries shows for SODA3 too: never in a URL or a body.
        self._socrata = sodapy.Socrata(
            self.host,
            settings.app_token,
            session_adapter={"prefix": prefix, "adapter": adapter},
            timeout=settings.read_timeout_seconds,
        )
        self._base = prefix + self.host
        self._timeout = (settings.connect_timeout_seconds, settings.read_timeout_seconds)
        self.max_retries = settings.max_retries
        self.setting = settings.api
        self.has_token = settings.app_token is not None
        self.api = "soda3" if settings.api == "soda3" else "soda2"
        self._log, self._stats = log, stats
        self._lock = threading.Lock()

    def close(self) -> None:
        self._socrata.close()

    def send(self, dataset_id: str, fmt: str, params: Mapping[str, str]) -> requests.Response:
        """The streaming answer of the API in use; in auto mode, SODA3's once SODA 2.1 is gone."""
        api = self.api
        response = self._send(api, dataset_id, fmt, params)
        withdrawn = response.status_code in soda3.WITHDRAWN_STATUSES
        if api == "soda3" or self.setting != "auto" or not self.has_token or not withdrawn:
            return response
        # A 404 may only mean an unknown dataset: SODA3 answering 404 too says so.
        replacement = self._send("soda3", dataset_id, fmt, params)
        if replacement.status_code == 404:
            self.finish(replacement)
            return response
        self.finish(response)
        self._switch(dataset_id, response.status_code)
        return replacement

    def error(self, dataset_id: str, response: requests.Response) -> SocrataError:
        """The failure of a non-200 answer, saying what to do if SODA 2.1 was withdrawn and the
        setting could not move to SODA3 by itself."""
        hint = ""
        if response.status_code in soda3.WITHDRAWN_STATUSES and self.api == "soda2":
            if self.setting == "soda2":
                hint = f" If SODA 2.1 is withdrawn there, set {SOCRATA_API_ENV}=soda3 or auto."
            elif not self.has_token:
                hint = (
                    " If SODA 2.1 is withdrawn there, SODA3 replaces it and needs an app token: "
                    f"set {SOCRATA_APP_TOKEN_ENV} ({soda3.APP_TOKEN_DOCS})."
                )
        return answer_error(self.host, dataset_id, response, hint)

    def finish(self, response: requests.Response) -> None:
        """Count what was received and close the response."""
        self._stats.add(bytes=response.raw.tell())
        response.close()

    def _switch(self, dataset_id: str, status: int) -> None:
        with self._lock:
            if self.api == "soda3":  # another thread of this client switched first
                return
            self.api = "soda3"
        self._log.warning(
            f"Socrata at {self.host} answered HTTP {status} to SODA 2.1 (/resource/{dataset_id}) "
            f"and SODA3 serves {dataset_id}: SODA 2.1 is withdrawn there, so the rest of this "
            f"run reads SODA3 ({soda3.query_path(dataset_id, 'csv')}). "
            f"Set {SOCRATA_API_ENV}=soda3 to start there."
        )

    def _send(
        self, api: str, dataset_id: str, fmt: str, params: Mapping[str, str]
    ) -> requests.Response:
        session = self._socrata.session
        try:
            if api == "soda3":
                url = self._base + soda3.query_path(dataset_id, fmt)
                body = soda3.request_body(params)
                response = session.post(url, json=body, timeout=self._timeout, stream=True)
            else:
                path = sodapy_utils.format_new_api_request(dataid=dataset_id, content_type=fmt)
                response = session.get(
                    self._base + path, params=params, timeout=self._timeout, stream=True
                )
        except requests.RequestException as exc:
            raise SocrataError(self._failure(dataset_id, exc)) from None
        history = response.raw.retries.history if response.raw.retries else ()
        self._stats.add(requests=1 + len(history), retries=len(history))
        return response

    def _failure(self, dataset_id: str, exc: requests.RequestException) -> str:
        if reason := unreachable_reason(exc):
            return (
                f"Socrata at {self.host} cannot be reached: {reason}. "
                f"Check {SOCRATA_DOMAIN_ENV} and the network."
            )
        # urllib3 has already spent its retries on dropped connections and time-outs.
        return (
            f"Socrata at {self.host} could not be reached for dataset {dataset_id} "
            f"after {self.max_retries} retries: {type(exc).__name__}: {exc}"
        )
