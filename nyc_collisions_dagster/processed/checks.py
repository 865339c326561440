"""Checks of the processed months, evaluated in the run that writes them.

Dagster records a partitioned check of a range run as one evaluation, so each result names the
months that failed.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS, DETAIL_START_MONTH
from nyc_collisions_dagster.listing import first_and_more

ROW_COUNT = "row_count_matches_raw"
UNIQUE_KEY = "unique_key_is_unique"
PERSONS_FOUND = "crashes_have_persons"
# About 0.5% of a month's crashes have no persons rows once the persons data is dense (January
# 2024: 6 of 1,204). Ten times that means the month's persons rows are incomplete, e.g. landed
# before late reports arrived, so the per-crash person counts would be too low.
MAX_SHARE_WITHOUT_PERSONS = 0.05


@dataclass
class MonthFigures:
    """What a written month holds, against what its raw days held."""

    raw_rows: int
    rows: int  # read back from the written file's footer
    duplicate_keys: int
    without_persons: int = 0  # crashes only


def check_specs(key: dg.AssetKey, name: str) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            ROW_COUNT,
            asset=key,
            description="Each month's file has as many rows as its raw days' files together.",
        ),
        dg.AssetCheckSpec(
            UNIQUE_KEY,
            asset=key,
            description=f"No {DATASETS[name].unique_key} appears twice in a month.",
        ),
    ]
    if name == "crashes":
        specs.append(
            dg.AssetCheckSpec(
                PERSONS_FOUND,
                asset=key,
                description=f"At most {MAX_SHARE_WITHOUT_PERSONS:.0%} of a month's crashes have "
                f"no persons rows (judged from {DETAIL_START_MONTH}, when the persons data "
                "becomes dense upstream; a warning).",
            )
        )
    return specs


def check_results(
    key: dg.AssetKey, name: str, figures: dict[str, MonthFigures]
) -> Iterator[dg.AssetCheckResult]:
    short = sorted(m for m, f in figures.items() if f.rows != f.raw_rows)
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=ROW_COUNT,
        passed=not short,
        description=f"{len(short)} months differ from their raw days: {first_and_more(short)}"
        if short
        else None,
        metadata={
            "months_checked": len(figures),
            "failed_months": dg.MetadataValue.json(
                {m: {"file": figures[m].rows, "raw": figures[m].raw_rows} for m in short[:50]}
            ),
        },
    )
    repeated = sorted(m for m, f in figures.items() if f.duplicate_keys)
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=UNIQUE_KEY,
        passed=not repeated,
        description=f"keys repeated in {first_and_more(repeated)}" if repeated else None,
        metadata={
            "duplicate_keys": sum(f.duplicate_keys for f in figures.values()),
            "failed_months": dg.MetadataValue.json(repeated[:50]),
        },
    )
    if name == "crashes":
        yield _persons_found(key, figures)


def _persons_found(key: dg.AssetKey, figures: dict[str, MonthFigures]) -> dg.AssetCheckResult:
    judged = {m: f for m, f in figures.items() if m >= DETAIL_START_MONTH and f.rows}
    shares = {m: f.without_persons / f.rows for m, f in judged.items()}
    over = sorted(m for m, share in shares.items() if share > MAX_SHARE_WITHOUT_PERSONS)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=PERSONS_FOUND,
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"more than {MAX_SHARE_WITHOUT_PERSONS:.0%} of crashes have no persons rows "
        f"in {first_and_more(over)}"
        if over
        else None,
        metadata={
            "months_judged": len(judged),
            "largest_share": round(max(shares.values(), default=0.0), 4),
            "failed_months": dg.MetadataValue.json({m: round(shares[m], 4) for m in over[:50]}),
        },
    )
