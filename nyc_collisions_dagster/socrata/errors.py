"""What Socrata answered a run: errors with Socrata's own code and message, and the counters."""

import threading

import requests

from nyc_collisions_dagster.constants import SOCRATA_APP_TOKEN_ENV
from nyc_collisions_dagster.socrata.retries import RETRIED_STATUSES


class SocrataError(RuntimeError):
    """Socrata refused a request, or stayed unavailable after every retry."""


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


def answer_error(
    host: str, dataset_id: str, response: requests.Response, hint: str = ""
) -> SocrataError:
    """The failure a non-200 answer means, with its errorCode and message; never the token."""
    status = response.status_code
    retried = len(response.raw.retries.history) if response.raw.retries else 0
    try:
        body = response.json()
        code = body.get("errorCode") or body.get("code") or "error"
        message = body.get("message") or response.reason
    except ValueError:
        code, message = "error", response.text[:300] or response.reason
    hint = {
        401: f" Check {SOCRATA_APP_TOKEN_ENV}.",
        403: f" Check {SOCRATA_APP_TOKEN_ENV}: Socrata refuses an invalid app token.",
        404: f" Is {dataset_id} a dataset on {host}?",
    }.get(status, "") + hint
    after = f" after {retried} retries" if status in RETRIED_STATUSES else ""
    return SocrataError(
        f"Socrata at {host} answered HTTP {status}{after} for dataset {dataset_id}: "
        f"{code}: {message}.{hint}"
    )
