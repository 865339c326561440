"""The Socrata client: settings, retries, clear errors, and rows that are never lost or repeated."""

import logging
import threading
import time
from datetime import date

import pytest

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.raw.stream import DayStream
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster.socrata.errors import SocrataError
from nyc_collisions_dagster_tests.outcomes import typed_rows

LOG = logging.getLogger("test")
CRASHES_ID = DATASETS["crashes"].dataset_id


def _fetch(resource: SocrataResource, asset: str, start: date, end: date) -> dict[date, list]:
    stream = DayStream(resource.get_client(), DATASETS[asset], start, end, LOG)
    return {day: table.to_pylist() for day, table in stream}


def test_settings_come_from_the_environment_at_run_time(make_soda_server, monkeypatch) -> None:
    server = make_soda_server()
    resource = SocrataResource()  # built before the variables are set, as at import time
    monkeypatch.setenv("SOCRATA_DOMAIN", server.url)
    monkeypatch.setenv("SOCRATA_APP_TOKEN", "token-from-env")
    days = _fetch(resource, "crashes", date(2024, 1, 2), date(2024, 1, 3))
    assert len(days[date(2024, 1, 2)]) > 0
    tokens = {
        value
        for r in server.requests
        for name, value in r.headers.items()
        if name.lower() == "x-app-token"
    }
    assert tokens == {"token-from-env"} and len(server.requests) == 2


def test_requests_in_flight_never_exceed_max_workers(make_soda_server, soda_rows) -> None:
    server = make_soda_server(latency=0.05)  # no limit of its own
    resource = SocrataResource(domain=server.url, page_size=300, max_workers=2)
    days = _fetch(resource, "persons", date(2024, 1, 1), date(2024, 1, 11))
    for day, rows in days.items():
        assert rows == typed_rows("persons", soda_rows["persons"], day)
    assert len(server.requests) > 10 and server.peak_in_flight == 2


def test_a_downloaded_page_holds_no_request_slot(make_soda_server) -> None:
    """Pages wait for their parser in temporary files, not on Socrata's connections."""
    server = make_soda_server()
    client = SocrataResource(domain=server.url, max_workers=1).get_client()
    params = {"$order": "collision_id", "$limit": "5"}

    def two_pages_at_once() -> list[bytes]:
        with client.spool(CRASHES_ID, "csv", params) as first:
            with client.spool(CRASHES_ID, "csv", params) as second:
                return [first.read(), second.read()]

    pages: list[bytes] = []
    worker = threading.Thread(target=lambda: pages.extend(two_pages_at_once()), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the second page waited for the first one's request slot"
    first, second = pages
    header, *rows = first.splitlines()
    assert first == second and b'"collision_id"' in header and len(rows) == 5
    assert client.stats.requests == 2


@pytest.mark.parametrize("fault", ["429", "500", "503", "disconnect", "slow"])
def test_each_fault_is_retried_without_losing_or_repeating_rows(
    make_soda_server, soda_rows, fault
) -> None:
    server = make_soda_server(soda_rows, slow_seconds=2.0, retry_after="1")
    resource = SocrataResource(
        domain=server.url, page_size=200, read_timeout_seconds=0.5, backoff_factor=0.01
    )
    server.fail_next(2, fault)
    client = resource.get_client()
    stream = DayStream(client, DATASETS["persons"], date(2024, 1, 1), date(2024, 1, 3), LOG)
    days = {day: table.to_pylist() for day, table in stream}
    for day, rows in days.items():
        assert rows == typed_rows("persons", soda_rows["persons"], day)
    assert client.stats.retries >= 2


def test_retry_after_is_honoured(make_soda_server, soda_rows) -> None:
    server = make_soda_server(soda_rows, retry_after="1")
    server.fail_next(1, "429")
    started = time.monotonic()
    _fetch(SocrataResource(domain=server.url), "crashes", date(2024, 1, 1), date(2024, 1, 2))
    assert time.monotonic() - started >= 1.0


def test_a_source_that_stays_down_fails_clearly_and_in_bounded_time(
    make_soda_server, soda_rows
) -> None:
    server = make_soda_server(soda_rows)
    server.fail_always(503)
    resource = SocrataResource(domain=server.url, max_retries=3, backoff_factor=0.05)
    started = time.monotonic()
    with pytest.raises(SocrataError, match=r"HTTP 503 after 3 retries"):
        _fetch(resource, "crashes", date(2024, 1, 1), date(2024, 1, 2))
    assert time.monotonic() - started < 10


def test_rejected_query_shows_socratas_error_code_and_message(soda_server) -> None:
    client = SocrataResource(domain=soda_server.url).get_client()
    with pytest.raises(SocrataError, match=r"HTTP 400.*query.soql.no-such-column.*no_such_field"):
        client.query("h9gi-nx95", {"$select": "no_such_field"})


def test_unknown_dataset_is_named(soda_server) -> None:
    client = SocrataResource(domain=soda_server.url).get_client()
    with pytest.raises(SocrataError, match=r"HTTP 404.*abcd-1234"):
        client.query("abcd-1234", {"$limit": "1"})


def test_invalid_app_token_fails_clearly_without_showing_it(make_soda_server, soda_rows) -> None:
    server = make_soda_server(soda_rows, app_tokens={"the-good-token"})
    resource = SocrataResource(domain=server.url, app_token="sekret-bad-token")
    with pytest.raises(SocrataError, match="HTTP 403.*SOCRATA_APP_TOKEN") as raised:
        _fetch(resource, "crashes", date(2024, 1, 1), date(2024, 1, 2))
    assert "sekret-bad-token" not in str(raised.value)


def test_a_server_capping_limit_below_the_page_size_costs_no_rows(
    make_soda_server, soda_rows
) -> None:
    server = make_soda_server(max_limit=1_000)
    resource = SocrataResource(domain=server.url, page_size=50_000)
    days = _fetch(resource, "persons", date(2024, 1, 1), date(2024, 1, 4))
    for day, rows in days.items():
        assert rows == typed_rows("persons", soda_rows["persons"], day)
    assert sum(len(rows) for rows in days.values()) > 3_000


def test_an_empty_window_costs_one_request_per_chunk(make_soda_server) -> None:
    server = make_soda_server()
    days = _fetch(SocrataResource(domain=server.url), "crashes", date(2023, 1, 1), date(2023, 2, 1))
    assert len(days) == 31 and not any(days.values())
    assert [r.path.endswith(".csv") for r in server.requests] == [False, True]  # count, one page


def test_gzip_responses_and_disconnects_inside_them(make_soda_server, soda_rows) -> None:
    server = make_soda_server(gzip=True)

    def break_the_first_page(path: str, params: dict[str, str]) -> None:
        if path.endswith(".csv"):
            server.on_request = None
            server.fail_next(1, "disconnect")

    server.on_request = break_the_first_page
    resource = SocrataResource(domain=server.url, page_size=300, backoff_factor=0.01)
    days = _fetch(resource, "vehicles", date(2024, 1, 1), date(2024, 1, 3))
    for day, rows in days.items():
        assert rows == typed_rows("vehicles", soda_rows["vehicles"], day)
    [broken] = [r for r in server.requests if r.fault]
    assert broken.fault == "disconnect" and broken.path.endswith(".csv")
    assert all("gzip" in r.headers["Accept-Encoding"] for r in server.requests)
