"""How a window of days is fetched, planned without threads or a server: chunks, page queries,
the settings the client is built from."""

from datetime import date, timedelta

import pytest

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.raw.planning import fits_one_page, page_params, plan_chunks
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster.socrata.errors import SocrataError
from nyc_collisions_dagster.socrata.settings import SocrataSettings
from nyc_collisions_dagster.socrata.transport import split_domain


def test_domain_may_carry_a_scheme() -> None:
    assert split_domain("data.cityofnewyork.us") == ("https://", "data.cityofnewyork.us")
    assert split_domain("http://127.0.0.1:8123/") == ("http://", "127.0.0.1:8123")
    assert split_domain("https://example.org") == ("https://", "example.org")


def _chunk_rows(counts: dict[date, int], chunks: list[tuple[date, date]]) -> list[int]:
    return [sum(n for day, n in counts.items() if start <= day < end) for start, end in chunks]


def test_chunks_cover_the_window_ramping_up_to_balanced_pages() -> None:
    counts = {date(2024, 1, 1) + timedelta(days=d): 400 + 7 * (d % 5) for d in range(300)}
    start, end = date(2024, 1, 1), date(2024, 12, 1)
    chunks = plan_chunks(start, end, counts, 5_000)
    assert chunks[0][0] == start and chunks[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    sizes = _chunk_rows(counts, chunks)
    assert sum(sizes) == sum(counts.values())
    # The fewest days reaching 1/8, 1/4 and 1/2 of a page, then the rest in the fewest pages.
    for size, share in zip(sizes, (1 / 8, 1 / 4, 1 / 2)):
        assert 5_000 * share <= size < 5_000 * share + max(counts.values())
    assert len(sizes) == 3 + -(-sum(sizes[3:]) // 5_000) and max(sizes) <= 5_000
    assert min(sizes[3:]) > 0.9 * max(sizes[3:])
    assert plan_chunks(start, end, {}, 5_000) == [(start, end)]


def test_the_first_page_of_a_chunk_is_ordered_by_day_and_key() -> None:
    params = page_params(DATASETS["persons"], date(2024, 1, 1), date(2024, 1, 3), None, 500)
    assert params == {
        "$where": "crash_date >= '2024-01-01T00:00:00' AND crash_date < '2024-01-03T00:00:00'",
        "$order": "crash_date, unique_id",
        "$limit": "500",
    }


def test_the_next_page_starts_after_the_last_row_taken() -> None:
    cursor = (date(2024, 1, 2), 12345)
    params = page_params(DATASETS["crashes"], date(2024, 1, 1), date(2024, 1, 3), cursor, 500)
    assert params["$where"] == (
        "crash_date >= '2024-01-01T00:00:00' AND crash_date < '2024-01-03T00:00:00'"
        " AND crash_date >= '2024-01-02T00:00:00'"
        " AND (crash_date > '2024-01-02T00:00:00' OR collision_id > 12345)"
    )


def test_only_a_window_that_surely_fits_one_page_skips_the_plan() -> None:
    day = date(2024, 1, 1)
    assert fits_one_page(day, day + timedelta(days=2), 10_000)
    assert not fits_one_page(day, day + timedelta(days=3), 10_000)


def test_the_resource_builds_frozen_settings_from_the_environment(monkeypatch) -> None:
    resource = SocrataResource(page_size=1_000)
    monkeypatch.setenv("SOCRATA_DOMAIN", "http://127.0.0.1:1")
    monkeypatch.setenv("SOCRATA_API", "soda2")
    settings = resource.settings()
    assert settings == SocrataSettings(domain="http://127.0.0.1:1", api="soda2", page_size=1_000)
    with pytest.raises(AttributeError):
        settings.page_size = 5  # type: ignore[misc]


def test_an_unknown_api_setting_is_refused_naming_the_choices(monkeypatch) -> None:
    monkeypatch.setenv("SOCRATA_API", "soda4")
    with pytest.raises(SocrataError, match="must be one of auto, soda2, soda3, not 'soda4'"):
        SocrataResource().settings()
    with pytest.raises(SocrataError, match="not 'soda4'"):
        SocrataSettings(domain="example.org", api="soda4")
