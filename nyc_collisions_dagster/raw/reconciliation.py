"""Reconciliation: the crash days on which the lake and the source disagree, deletions included.

The source's rows per day come from one grouped count(*) per dataset over the whole history. The
lake's are the `dagster/row_count` that Dagster recorded with each partition's latest
materialization: one index query and a few batched event reads, instead of a file read per day.
reconciliation_sensor compares the whole history; lake_matches_source, a check of each raw asset,
does too when it runs alone, and compares only the landed days in a run that lands days.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS, Dataset
from nyc_collisions_dagster.listing import first_and_more
from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.days import days_between
from nyc_collisions_dagster.raw.planning import count_by_day
from nyc_collisions_dagster.raw.report import FetchReport
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster.socrata.client import SocrataClient

LAKE_MATCHES_SOURCE = "lake_matches_source"
# Storage ids per event-log query: one query for a whole dataset would pass 5,000+ parameters.
_RECORDS_PER_QUERY = 1_000
_TABLE_DAYS = 100  # differing days in the check's table; the count says how many there are


@dataclass(frozen=True)
class Comparison:
    """One dataset's rows per crash day, in the source and in the lake, over every partition."""

    asset: str
    landed: set[date]  # partitions with a materialization
    never_landed: list[date]  # in order
    # day -> (source rows, lake rows); lake rows are None if the materialization recorded none
    differing: dict[date, tuple[int, int | None]]


def partition_days() -> list[date]:
    """Every partition, from 2012-07-01 to the last complete New York day."""
    return [date.fromisoformat(key) for key in daily_partitions.get_partition_keys()]


def lake_counts(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, days: Sequence[date]
) -> dict[date, int | None]:
    """The row count of each of `days` that was materialized, from its latest materialization."""
    latest = instance.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    wanted = {day.isoformat() for day in days}
    storage_ids = sorted(id_ for key, id_ in latest.items() if key in wanted)
    counts: dict[date, int | None] = {}
    for start in range(0, len(storage_ids), _RECORDS_PER_QUERY):
        batch = storage_ids[start : start + _RECORDS_PER_QUERY]
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=batch), limit=len(batch)
        ).records
        for record in records:
            materialization = record.asset_materialization
            if materialization is None or materialization.partition is None:
                continue
            rows = materialization.metadata.get("dagster/row_count")
            value = rows.value if rows is not None else None
            counts[date.fromisoformat(materialization.partition)] = (
                value if isinstance(value, int) else None
            )
    return counts


def compare(
    client: SocrataClient,
    instance: dg.DagsterInstance,
    datasets: Sequence[Dataset],
    days: Sequence[date],
) -> list[Comparison]:
    """Each dataset's rows in the source and in the lake on `days` (consecutive, in order)."""
    end = days[-1] + timedelta(days=1)
    # The count queries wait on Socrata: they run together, while this thread reads the records.
    with ThreadPoolExecutor(len(datasets), thread_name_prefix="count") as pool:
        sources = [pool.submit(count_by_day, client, d, days[0], end) for d in datasets]
        lakes = [lake_counts(instance, dg.AssetKey(d.asset), days) for d in datasets]
        return [
            _comparison(dataset.asset, days, source.result(), lake)
            for dataset, source, lake in zip(datasets, sources, lakes)
        ]


def _comparison(
    asset: str, days: Sequence[date], source: dict[date, int], lake: dict[date, int | None]
) -> Comparison:
    landed = {day for day in days if day in lake}
    return Comparison(
        asset=asset,
        landed=landed,
        never_landed=[day for day in days if day not in lake],
        differing={
            day: (source.get(day, 0), lake[day])
            for day in sorted(landed)
            if lake[day] != source.get(day, 0)
        },
    )


def never_landed_text(comparison: Comparison) -> str:
    days = comparison.never_landed
    return f"{len(days):,} days never landed" + (f": {days[0]}...{days[-1]}" if days else "")


def check_result(comparison: Comparison) -> dg.AssetCheckResult:
    differing = list(comparison.differing)
    not_landed = never_landed_text(comparison) + " (not compared: filling them is a backfill's job)"
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(comparison.asset),
        check_name=LAKE_MATCHES_SOURCE,
        passed=not differing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{len(differing)} days differ from Socrata: {first_and_more(differing)}; {not_landed}"
            if differing
            else f"All {len(comparison.landed):,} landed days match Socrata; {not_landed}"
        ),
        metadata={
            "days_compared": len(comparison.landed),
            "days_differing": len(differing),
            "days_never_landed": len(comparison.never_landed),
            "differing_days": dg.MetadataValue.table(
                records=[
                    dg.TableRecord({"day": str(day), "source_rows": source, "lake_rows": lake})
                    for day, (source, lake) in list(comparison.differing.items())[:_TABLE_DAYS]
                ],
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn("day", "string"),
                        dg.TableColumn("source_rows", "int"),
                        dg.TableColumn("lake_rows", "int"),
                    ]
                ),
            ),
        },
    )


def lake_check_spec(dataset: Dataset) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        LAKE_MATCHES_SOURCE,
        asset=dataset.asset,
        description="Every landed day has as many rows as Socrata has for it, deletions "
        "included. Alone, it reads Dagster's recorded row counts and one count query: it fetches "
        "no rows. In a run that lands days, it compares those days at no cost.",
        # A difference anywhere in the history must not hold back what reads the lake.
        blocking=False,
    )


def lake_check_keys() -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(dg.AssetKey(d.asset), LAKE_MATCHES_SOURCE) for d in DATASETS.values()]


def landed_result(report: FetchReport) -> dg.AssetCheckResult:
    """The check in a run that lands days: those days, as the fetch counted and wrote them."""
    days = sorted(report.rows_by_day)
    lake: dict[date, int | None] = dict(report.rows_by_day)
    return check_result(_comparison(report.asset, days, report.source_counts, lake))


def checked_alone(
    context: dg.AssetExecutionContext, socrata: SocrataResource, dataset: Dataset
) -> dg.AssetCheckResult:
    """The check in a run without its asset, e.g. the UI's *Execute*: one count query."""
    with closing(socrata.get_client(context.log)) as client:
        [comparison] = compare(client, context.instance, [dataset], _days_to_compare(context))
    return check_result(comparison)


def _days_to_compare(context: dg.AssetExecutionContext) -> list[date]:
    """The days the run names, else (the UI's *Execute* names none) the whole history."""
    tags = context.run.tags
    first = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
    if not (first and last):
        return partition_days()
    return sorted(days_between(date.fromisoformat(first), date.fromisoformat(last)))
