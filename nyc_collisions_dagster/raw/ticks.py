"""What the raw layer's sensors share: their resources, and the runs a tick requests."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date

import dagster as dg

from nyc_collisions_dagster.raw.days import contiguous_ranges, days_between
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource

# Runs requested per tick; past it each dataset's days are coalesced into one ranged run.
MAX_RUNS = 25


@contextmanager
def sensor_resources(
    context: dg.SensorEvaluationContext,
) -> Iterator[tuple[SocrataResource, ParquetIOManager]]:
    """The sensor's resources, from the context, else the Definitions, else the defaults.

    Declared resource parameters would make a direct evaluation such as
    `sensor(build_sensor_context(definitions=defs))` fail, as Dagster supplies them on some
    code paths only; resolving them here makes every way of evaluating it work.
    """
    provided = context.resources
    if hasattr(provided, "socrata") and hasattr(provided, "io_manager"):
        yield provided.socrata, provided.io_manager
    elif context.repository_def is not None:
        with dg.build_resources(context.repository_def.get_top_level_resources()) as built:
            yield built.socrata, built.io_manager
    else:
        yield SocrataResource(), ParquetIOManager()


def capped_run_requests(
    days_by_asset: Mapping[str, set[date]],
    run_key: str,
    fetchable: Mapping[str, set[date]] | None = None,
) -> tuple[list[dg.RunRequest], str | None]:
    """Runs for exactly `days_by_asset`, one per stretch of consecutive days, and a note if capped.

    Past MAX_RUNS, each dataset's days become one range from its first day to its last, which
    fetches the days between too. `fetchable` (per dataset, when given) names the days such a
    range may cover: it breaks around any other day.
    """
    ranges_by_asset = {name: contiguous_ranges(days) for name, days in days_by_asset.items()}
    if sum(len(r) for r in ranges_by_asset.values()) <= MAX_RUNS:
        return _run_requests(ranges_by_asset, run_key), None
    for name, days in days_by_asset.items():
        span = days_between(min(days), max(days))
        if fetchable is not None:
            span &= fetchable[name]
        ranges_by_asset[name] = contiguous_ranges(span)
    note = f"more than {MAX_RUNS} runs needed: each dataset's days are fetched as one range"
    if fetchable is not None:
        note += ", broken around the days it must not fetch"
    return _run_requests(ranges_by_asset, run_key), note


def _run_requests(
    ranges_by_asset: dict[str, list[tuple[date, date]]], run_key: str
) -> list[dg.RunRequest]:
    """One run per range, shared by the datasets that need that same range."""
    assets_by_range: dict[tuple[date, date], list[str]] = {}
    for name, ranges in ranges_by_asset.items():
        for span in ranges:
            assets_by_range.setdefault(span, []).append(name)
    return [
        dg.RunRequest(
            run_key=f"{first}...{last}:{'+'.join(names)}:{run_key}",
            asset_selection=[dg.AssetKey(name) for name in names],
            partition_key=first.isoformat() if first == last else None,
            tags=_range_tags(first, last),
        )
        for (first, last), names in sorted(assets_by_range.items())
    ]


def _range_tags(first: date, last: date) -> dict[str, str]:
    """A run of several days is one ranged run: its partitions are the range's tags."""
    if first == last:
        return {}
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
