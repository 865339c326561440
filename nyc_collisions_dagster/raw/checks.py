"""Asset checks evaluated in the run that writes the files, from what was fetched and written.

Dagster records a partitioned check of a range run as one evaluation, so each result names the
days that failed.
"""

from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg
import numpy as np

from nyc_collisions_dagster.constants import Dataset
from nyc_collisions_dagster.listing import SHOWN, first_and_more
from nyc_collisions_dagster.raw.report import FetchReport

ROW_COUNT = "row_count_matches_source"
UNIQUE_KEY = "unique_key_is_unique"
LINKED = "collision_ids_exist_in_crashes"
# Crashes files read at once for the linked check. Each is a small read, bound by latency on S3,
# and the check runs after the run's last day is written.
_READERS = 16


def check_specs(dataset: Dataset) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            ROW_COUNT,
            asset=dataset.asset,
            description="Each day's file has as many rows as Socrata's count(*) for the day "
            "when it was fetched.",
        ),
        dg.AssetCheckSpec(
            UNIQUE_KEY,
            asset=dataset.asset,
            description=f"No {dataset.unique_key} appears twice among the days written.",
        ),
    ]
    if dataset.unique_key != "collision_id":
        specs.append(
            dg.AssetCheckSpec(
                LINKED,
                asset=dataset.asset,
                description="Every collision_id is a crash of the same day in the crashes files "
                "(a warning: the source itself is not perfectly linked).",
            )
        )
    return specs


def check_results(
    report: FetchReport,
    crash_ids: Callable[[date], np.ndarray | None],
    selected: Collection[str],
) -> Iterator[dg.AssetCheckResult]:
    """The results of the `selected` checks for the days of `report`; `crash_ids(day)` reads a
    crashes file's ids. A check left out of the run costs nothing: the linked one reads a crashes
    file per day."""
    if ROW_COUNT in selected:
        yield _row_count_result(report)
    if UNIQUE_KEY in selected:
        yield _unique_key_result(report)
    if LINKED in selected and report.unique_key != "collision_id":
        yield _linked_result(report, crash_ids)


def _row_count_result(report: FetchReport) -> dg.AssetCheckResult:
    short = sorted(
        d for d, rows in report.rows_by_day.items() if rows != report.source_counts.get(d, 0)
    )
    return dg.AssetCheckResult(
        check_name=ROW_COUNT,
        passed=not short,
        description=(
            f"{len(short)} days differ from Socrata: {first_and_more(short)}" if short else None
        ),
        metadata={
            "days_checked": len(report.rows_by_day),
            "failed_days": dg.MetadataValue.json(
                {
                    d.isoformat(): {
                        "file": report.rows_by_day[d],
                        "socrata": report.source_counts.get(d, 0),
                    }
                    for d in short[:SHOWN]
                }
            ),
        },
    )


def _unique_key_result(report: FetchReport) -> dg.AssetCheckResult:
    duplicates = report.duplicate_keys()
    bad_days = sorted({d for days in duplicates.values() for d in days})
    return dg.AssetCheckResult(
        check_name=UNIQUE_KEY,
        passed=not duplicates,
        description=f"{len(duplicates)} keys repeated, on {first_and_more(bad_days)}"
        if duplicates
        else None,
        metadata={
            "duplicate_keys": len(duplicates),
            "failed_days": dg.MetadataValue.json([d.isoformat() for d in bad_days[:SHOWN]]),
        },
    )


def _linked_result(
    report: FetchReport, crash_ids: Callable[[date], np.ndarray | None]
) -> dg.AssetCheckResult:
    unlinked: dict[date, int] = {}
    unchecked: list[date] = []
    linked = {day: ids for day, ids in sorted(report.collision_ids_by_day.items()) if len(ids.ids)}
    with ThreadPoolExecutor(_READERS, thread_name_prefix="crash-ids") as pool:
        # Compared as they come: the crashes of a long range are not all held at once.
        for (day, ids), crashes in zip(linked.items(), pool.map(crash_ids, linked)):
            if crashes is None:
                unchecked.append(day)
            elif missing := ids.rows_not_in(crashes):
                unlinked[day] = missing
    failed = sorted(unlinked)
    return dg.AssetCheckResult(
        check_name=LINKED,
        passed=not unlinked,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{sum(unlinked.values())} rows point at no crash of their day, "
            f"on {first_and_more(failed)}"
            if unlinked
            else None
        ),
        metadata={
            "unlinked_rows": sum(unlinked.values()),
            "failed_days": dg.MetadataValue.json(
                {d.isoformat(): n for d, n in list(unlinked.items())[:SHOWN]}
            ),
            "days_without_crashes_file": len(unchecked),
        },
    )
