"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, opens the page from
a file with the network blocked, with no console error, every chart drawn with marks and the map
with its points; thin data shows its empty states."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from nyc_collisions_dagster.processed.summary_asset import summary
from nyc_collisions_dagster.reports.assets import dashboard
from nyc_collisions_dagster.reports.charts import CHARTS
from nyc_collisions_dagster.resources.reports import ReportsLocation
from nyc_collisions_dagster_tests.outcomes import dashboard_page_data

pytestmark = pytest.mark.one_transport  # reads the lake only

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machines here run it: no sandbox as root, and none of Chromium's own network chatter.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
MARKS = "g.role-mark > path, g.role-mark > g > path"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is not installed at {CHROMIUM}: make test installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Opened:
    """A page opened offline, with what it asked of the network and what it logged."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.context = browser.new_context(offline=True)
        self.page: Page = self.context.new_page()
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.route("**/*", self._only_the_file)
        self.page.goto(path.as_uri())
        # Every chart is drawn, or has said why not.
        for chart_id, *_ in CHARTS:
            self.page.wait_for_selector(f"#{chart_id} svg, #{chart_id}.empty", timeout=30_000)

    def _only_the_file(self, route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.requested.append(route.request.url)
            route.abort()

    def marks(self, chart_id: str) -> int:
        return self.page.locator(f"#{chart_id} svg").locator(MARKS).count()


def _page(lake: Path, layer_resources, server, reports: Path) -> Path:
    resources = {
        **layer_resources(server, lake),
        "reports": ReportsLocation(storage_url=str(reports)),
    }
    assert dg.materialize([summary, dashboard], resources=resources).success
    return reports / "dashboard.html"


def test_every_chart_and_the_map_draw_offline(
    browser, processed_months, layer_resources, month_server, tmp_path
) -> None:
    lake = Path(shutil.copytree(processed_months, tmp_path / "lake"))
    path = _page(lake, layer_resources, month_server, tmp_path / "reports")
    opened = Opened(browser, path)
    assert opened.requested == [] and opened.errors == []
    for chart_id, *_ in CHARTS:
        assert opened.marks(chart_id) > 0, chart_id
    # The map's points: one circle for each mapped KSI crash.
    points = dashboard_page_data(path.read_text())["ksi_crashes"]
    circles = opened.page.locator("#ksi-map svg g.mark-symbol.role-mark path")
    assert circles.count() == len(points) > 0
    # Spread over the city: with an outline drawn inside out, the map fits the globe and every
    # point lands on the same pixel.
    places = {circles.nth(i).get_attribute("transform") for i in range(circles.count())}
    assert len(places) == len(points)
    # The yearly chart: one bar a borough a year with KSI (the generated rows hold all six).
    bars = opened.page.locator("#chart-yearly svg g.mark-rect.role-mark path").count()
    assert bars > 0


def test_thin_data_shows_empty_states_and_no_error(
    browser, processed_months, layer_resources, month_server, tmp_path
) -> None:
    lake = Path(shutil.copytree(processed_months, tmp_path / "lake"))
    for file in (lake / "collisions_processed_data" / "crashes").rglob("*.parquet"):
        table = pq.read_table(file)
        index = table.schema.get_field_index("ksi")
        pq.write_table(table.set_column(index, "ksi", pc.multiply(table["ksi"], 0)), file)
    path = _page(lake, layer_resources, month_server, tmp_path / "reports")
    opened = Opened(browser, path)
    assert opened.requested == [] and opened.errors == []
    for chart_id in ("chart-factors", "chart-vehicles", "ksi-map"):
        shown = opened.page.locator(f"#{chart_id}")
        assert "empty" in (shown.get_attribute("class") or "")
        assert "No " in shown.inner_text()
    assert opened.marks("chart-monthly") > 0
