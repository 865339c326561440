"""The summary tier equals the same aggregate over processed crashes, month by month, and follows
a late record through automation by exactly the changed rows, reading only the changed month; the
dashboard follows it."""

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nyc_collisions_dagster.definitions import defs
from nyc_collisions_dagster.lake import query
from nyc_collisions_dagster.processed.assets import processed_key, processed_tables
from nyc_collisions_dagster.processed.summary import SUMS
from nyc_collisions_dagster.processed.summary_asset import SUMMARY_KEY, summary
from nyc_collisions_dagster.raw.assets import crashes
from nyc_collisions_dagster.reports.assets import DASHBOARD_KEY, dashboard
from nyc_collisions_dagster.resources.reports import ReportsLocation
from nyc_collisions_dagster_tests.outcomes import monthly_on_page
from nyc_collisions_dagster_tests.soda_fake.generator import FIELDS, crash_date

pytestmark = pytest.mark.one_transport  # reads the lake; the landing is test_assets' concern

MONTHS = ("2024-02", "2024-03", "2024-04")
# The same figures as the summary's, from processed crashes itself, by crash day and borough.
FROM_CRASHES = (
    "SELECT crash_date, crash_borough, count(*) AS crashes, "
    + ", ".join(f"coalesce(sum({column}), 0) AS {name}" for name, column in SUMS.items())
    + ", count(*) FILTER (WHERE ksi > 0) AS ksi_crashes "
    "FROM read_parquet('{root}/crashes/*/*/*.parquet') WHERE strftime(crash_date, '%Y-%m') = ? "
    "GROUP BY ALL"
)
FROM_SUMMARY = (
    "SELECT crash_date, crash_borough, crashes, " + ", ".join(SUMS) + ", ksi_crashes "
    "FROM summary WHERE strftime(crash_date, '%Y-%m') = ?"
)


def _figures(root: Path, month: str) -> tuple[set[tuple], set[tuple]]:
    """The month's rows of the summary (the lake command's view) and of processed crashes."""
    processed = root / "collisions_processed_data"
    lake = query.connect(url=str(processed))
    from_summary = set(lake.execute(FROM_SUMMARY, [month]).fetchall())
    from_crashes = set(duckdb.execute(FROM_CRASHES.format(root=processed), [month]).fetchall())
    return from_summary, from_crashes


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [event] = result.get_asset_materialization_events()
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_every_figure_equals_the_aggregate_over_processed_crashes(
    processed_months, month_server, layer_resources, tmp_path
) -> None:
    root = Path(shutil.copytree(processed_months, tmp_path / "lake"))
    result = dg.materialize([summary], resources=layer_resources(month_server, root))
    assert result.success
    metadata = _metadata(result)
    assert (metadata["months"], metadata["months_read"]) == (3, 3)
    assert metadata["through"] == "2024-04-30"
    total = 0
    for month in MONTHS:
        from_summary, from_crashes = _figures(root, month)
        assert from_summary == from_crashes
        assert any(row[1] is None for row in from_summary)  # the null borough is its own group
        total += len(from_summary)
    assert metadata["dagster/row_count"] == total
    # Built again with nothing changed, it reads no month.
    again = dg.materialize([summary], resources=layer_resources(month_server, root))
    assert _metadata(again)["months_read"] == 0
    assert _figures(root, "2024-03")[0] == _figures(root, "2024-03")[1]


def test_a_late_record_moves_its_month_by_exactly_the_changed_rows(
    processed_months, make_soda_server, month_rows, layer_resources, tmp_path
) -> None:
    root = Path(shutil.copytree(processed_months, tmp_path / "lake"))
    server = make_soda_server(month_rows)
    page = tmp_path / "reports" / "dashboard.html"
    reports = ReportsLocation(storage_url=str(page.parent))
    resources = {**layer_resources(server, root), "reports": reports}
    instance = dg.DagsterInstance.ephemeral()

    def run(assets: list, **kwargs: object) -> dg.ExecuteInProcessResult:
        result = dg.materialize(assets, resources=resources, instance=instance, **kwargs)
        assert result.success
        return result

    def requested(cursor: object) -> tuple[dict[str, set[str]], object]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        keys = [
            *(processed_key(n) for n in ("crashes", "persons", "vehicles")),
            SUMMARY_KEY,
            DASHBOARD_KEY,
        ]
        found = {key.to_user_string(): result.get_requested_partitions(key) for key in keys}
        return {k: set(v) for k, v in found.items() if v}, result.cursor

    # The module's lake was landed and processed in another instance: this one is told so.
    for name in ("crashes", "persons", "vehicles"):
        for day in range(1, 32):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(name, partition=f"2024-03-{day:02d}")
            )
        for month in MONTHS:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(processed_key(name), partition=month)
            )
    run([summary, dashboard])
    before = {month: _figures(root, month)[0] for month in MONTHS}
    page_before = _page_figures(page)
    cursor = None
    _, cursor = requested(cursor)

    # Upstream, a late crash on March 10: a copy of one of that day's, with 3 more injured.
    fields = FIELDS["crashes"]
    on_march_10 = (r for r in month_rows["crashes"] if crash_date("crashes", r) >= "2024-03-10")
    source = next(on_march_10)
    late = list(source)
    late[fields.index("collision_id")] = "99999001"
    late[fields.index("number_of_persons_injured")] = str(
        int(source[fields.index("number_of_persons_injured")] or 0) + 3
    )
    server.upsert("crashes", [tuple(late)])
    run([crashes], partition_key="2024-03-10")  # as the late-records sensor would

    wanted, cursor = requested(cursor)
    assert wanted == {key: {"2024-03"} for key in ("processed/crashes", "processed/persons",
                                                   "processed/vehicles")}  # fmt: skip
    run([processed_tables], partition_key="2024-03")
    wanted, cursor = requested(cursor)
    # The summary alone: the dashboard waits for it rather than being drawn twice.
    assert wanted == {"processed/summary": {None}}  # unpartitioned
    result = run([summary])
    assert _metadata(result)["months_read_list"] == ["2024-03"]
    wanted, cursor = requested(cursor)
    assert wanted == {"reports/dashboard": {None}}
    run([dashboard])
    assert requested(cursor)[0] == {}

    after = {month: _figures(root, month)[0] for month in MONTHS}
    assert after["2024-02"] == before["2024-02"] and after["2024-04"] == before["2024-04"]
    assert after["2024-03"] == _figures(root, "2024-03")[1]
    changed_before = before["2024-03"] - after["2024-03"]
    changed_after = after["2024-03"] - before["2024-03"]
    [old], [new] = changed_before, changed_after
    assert (new[0].isoformat(), new[1]) == (old[0].isoformat(), old[1]) == ("2024-03-10", old[1])
    assert new[2] == old[2] + 1  # one more crash
    injured = 3 + list(SUMS).index("injured")
    assert (
        new[injured]
        == old[injured] + int(source[fields.index("number_of_persons_injured")] or 0) + 3
    )
    # The page's March figures for that borough moved by the late crash, and nothing else did.
    page_after = _page_figures(page)
    key = ("2024-03", new[1])
    moved = {k for k in page_after if page_after[k] != page_before.get(k)}
    assert moved == {key}
    added = int(late[fields.index("number_of_persons_injured")])
    assert page_after[key][:2] == [page_before[key][0] + 1, page_before[key][1] + added]


def _page_figures(page: Path) -> dict[tuple[str, str | None], list[int]]:
    return monthly_on_page(page.read_text())
