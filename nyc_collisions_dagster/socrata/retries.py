"""What a failed request is retried for: answers and connections that can recover, not a host
that cannot be reached at all."""

import errno
import socket
from types import TracebackType
from typing import Self

import requests
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, NameResolutionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

# Failures that happen while a response body streams in. urllib3's Retry only covers the request
# up to the headers, so these are retried by the client, from where the stream broke.
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, Urllib3Error, OSError)
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_NO_ROUTE = {
    errno.ENETUNREACH: "the network is unreachable",
    errno.EHOSTUNREACH: "there is no route to it",
}


def unreachable_reason(error: BaseException) -> str | None:
    """Why the host cannot be reached at all, or None for a failure that may pass.

    A name that does not resolve (a mistyped domain, no network) or a port that refuses stays
    that way for longer than any backoff: retrying it only delays the failure by a minute.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NameResolutionError | socket.gaierror):
            return "its name does not resolve"
        if isinstance(current, ConnectionRefusedError):
            return "it refuses connections"
        if isinstance(current, OSError) and current.errno in _NO_ROUTE:
            return _NO_ROUTE[current.errno]
        reason = current.reason if isinstance(current, MaxRetryError) else None
        current = reason or current.__cause__ or current.__context__
    return None


class ReachableRetry(Retry):
    """urllib3's Retry, except that a host which cannot be reached fails at the first attempt."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if error is not None and unreachable_reason(error):
            raise MaxRetryError(_pool, url or "", error) from error  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)
