"""Choosing the SODA transport: the auto switch when /resource/ goes, and what never switches."""

import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from nyc_collisions_dagster.raw.assets import collision_assets, crashes
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster.socrata.errors import SocrataError
from nyc_collisions_dagster_tests.outcomes import (
    DAYS,
    FIVE_DAYS,
    failure_message,
    file_rows,
    typed_rows,
)

pytestmark = pytest.mark.one_transport  # each test sets the api it is about
TOKEN = "switch-test-token"


def _materialize(
    assets: list, server, lake: Path, instance: dg.DagsterInstance | None = None, **socrata
) -> dg.ExecuteInProcessResult:
    """A five-day run (one day for crashes alone) with these socrata settings, failures kept."""
    resources = {
        "socrata": SocrataResource(domain=server.url, **socrata),
        "io_manager": ParquetIOManager(storage_url=str(lake)),
    }
    partition = {"tags": FIVE_DAYS} if len(assets) > 1 else {"partition_key": "2024-01-02"}
    return dg.materialize(
        assets, resources=resources, instance=instance, raise_on_error=False, **partition
    )


def _switches(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    messages = [e.user_message for e in instance.all_logs(run_id)]
    return [m for m in messages if "SODA 2.1 is withdrawn" in m]


def test_auto_moves_to_soda3_once_when_resource_is_withdrawn_mid_run(
    make_soda_server, soda_rows, tmp_path
) -> None:
    server = make_soda_server()
    pages: list[str] = []

    def withdraw_after_two_pages(path: str, clauses: dict[str, str]) -> None:
        if path.endswith(".csv"):
            pages.append(path)
            if len(pages) == 2:
                server.withdraw_resource(410)

    server.on_request = withdraw_after_two_pages
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(
        collision_assets, server, tmp_path, instance, app_token=TOKEN, page_size=800, max_workers=1
    )
    assert result.success
    for name in ("crashes", "persons", "vehicles"):
        for day in DAYS:
            path = tmp_path / name / f"{day}.parquet"
            assert file_rows(str(path)) == typed_rows(name, soda_rows[name], day)
    # Each step's client moved once: one 410 and one log line per dataset, and after its first
    # SODA3 request no dataset went back to /resource/.
    gone = Counter(r.dataset_id for r in server.requests if r.status == 410)
    assert gone == Counter({"h9gi-nx95": 1, "f55k-p6yu": 1, "bm4k-52h4": 1})
    switches = _switches(instance, result.run_id)
    assert len(switches) == 3 and all("answered HTTP 410" in s for s in switches)
    for dataset in gone:
        paths = [r.path for r in server.requests if r.dataset_id == dataset]
        first_soda3 = next(i for i, p in enumerate(paths) if p.startswith("/api/v3/"))
        assert all(p.startswith("/api/v3/") for p in paths[first_soda3:])


@pytest.mark.parametrize("api, fault", [("auto", "503"), ("auto", "slow"), ("soda2", "410")])
def test_what_never_switches(make_soda_server, tmp_path, api, fault) -> None:
    """auto retries 5xx answers and time-outs where they happen; a pinned soda2 stays put."""
    server = make_soda_server(slow_seconds=2.0)
    if fault == "410":
        server.withdraw_resource(410)
    else:
        server.fail_always(fault)
    settings = {"max_retries": 1, "backoff_factor": 0.01, "read_timeout_seconds": 0.3}
    result = _materialize([crashes], server, tmp_path, api=api, app_token=TOKEN, **settings)
    assert not result.success
    assert all(r.path.startswith("/resource/") for r in server.requests)
    message = failure_message(result)
    if fault == "410":
        assert "HTTP 410" in message and "set SOCRATA_API=soda3 or auto" in message


def test_an_unknown_dataset_is_a_404_on_both_apis_and_no_switch(make_soda_server) -> None:
    server = make_soda_server()
    client = SocrataResource(domain=server.url, app_token=TOKEN).get_client()
    with pytest.raises(SocrataError, match=r"HTTP 404 for dataset abcd-1234.*a dataset on"):
        client.query("abcd-1234", {"$limit": "1"})
    assert client.api == "soda2"
    assert [r.path for r in server.requests] == [
        "/resource/abcd-1234.json",
        "/api/v3/views/abcd-1234/query.json",
    ]


def test_soda3_without_an_app_token_fails_at_once_saying_how_to_get_one(
    make_soda_server, tmp_path
) -> None:
    server = make_soda_server()
    started = time.monotonic()
    result = _materialize([crashes], server, tmp_path, api="soda3")
    assert not result.success and time.monotonic() - started < 30
    message = failure_message(result)
    assert "SODA3 needs an app token" in message and "SOCRATA_APP_TOKEN" in message
    assert "https://dev.socrata.com/docs/app-tokens" in message
    assert server.requests == []


def test_auto_without_an_app_token_cannot_move_and_says_why(make_soda_server) -> None:
    server = make_soda_server()
    server.withdraw_resource(410)
    client = SocrataResource(domain=server.url).get_client()
    with pytest.raises(SocrataError, match="HTTP 410.*SODA3 replaces it and needs an app token"):
        client.query("h9gi-nx95", {"$limit": "1"})
    assert [r.path for r in server.requests] == ["/resource/h9gi-nx95.json"]


def test_an_unknown_api_setting_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("SOCRATA_API", "soda4")
    with pytest.raises(SocrataError, match="auto, soda2, soda3, not 'soda4'"):
        SocrataResource().get_client()
