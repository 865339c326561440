"""The suite's generated rows as the benchmarks use them: at realistic daily volumes, and typed
as the raw layer stores them."""

from datetime import date, timedelta

import pyarrow as pa

from nyc_collisions_dagster.raw.schema import DROPPED_COLUMNS, SCHEMAS, TypingReport, to_typed
from nyc_collisions_dagster_tests.soda_fake.generator import FIELDS, UNIQUE_KEYS, Row, generate

# The generator's 600 crashes a day bring about 2,050 persons and 1,180 vehicles rows: the
# persons-per-crash ratio is its own, so persons run above the issue's ~1,500 a day.
CRASHES_PER_DAY = (500, 700)

__all__ = ["CRASHES_PER_DAY", "generate", "typed", "typed_day"]


def typed(name: str, rows: list[Row]) -> pa.Table:
    """The generator's text rows as the raw layer stores them: typed, `location` dropped."""
    text = {
        field: pa.array([row[i] for row in rows], pa.string())
        for i, field in enumerate(FIELDS[name])
        if field not in DROPPED_COLUMNS
    }
    return to_typed(pa.table(text), SCHEMAS[name], TypingReport())


def typed_day(name: str, day: date) -> pa.Table:
    """One generated day of a dataset as its raw file holds it: sorted by the unique key."""
    rows = generate(day, day + timedelta(days=1), datasets=[name], crashes_per_day=CRASHES_PER_DAY)[
        name
    ]
    return typed(name, rows).sort_by(UNIQUE_KEYS[name])
