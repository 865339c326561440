"""One spelling per vehicle class and per contributing factor, from tables shipped as data.

`vehicle_types.csv` maps each known spelling of `vehicle_type` to a class, and
`contributing_factors.csv` each known spelling of a factor to NYPD's, or to nothing for values
that are not factors. Both are keyed by `spelling_key`, so case and blanks do not tell spellings
apart. A spelling neither table knows gives `other`, and is reported with its count.
"""

import csv
import io
from functools import cache
from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc

VEHICLE_CATEGORIES = (
    "car",
    "suv",
    "pickup_van",
    "taxi_livery",
    "bus",
    "truck",
    "motorcycle",
    "moped",
    "bicycle",
    "e_bike",
    "e_scooter",
    "emergency",
    "other",
    "unknown",
)
UNMAPPED = "other"


def spelling_key(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The key of each spelling: upper case, blanks trimmed and collapsed; null when blank."""
    key = pc.utf8_upper(pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"\s+", " "))
    return pc.if_else(pc.equal(key, ""), pa.scalar(None, pa.string()), key)


@cache
def _table(name: str) -> tuple[pa.Array, pa.Array]:
    """The keys and values of a shipped table; an empty value means 'not a value: drop it'."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    values = [value or None for _, value in rows]
    return pa.array([key for key, _ in rows], pa.string()), pa.array(values, pa.string())


def _mapped(values: pa.Array | pa.ChunkedArray, table: str) -> tuple[pa.Array, pa.Array]:
    """Each value's mapping (`other` when unknown, null when blank or dropped), and whether the
    table knows it. Works on the distinct values: a month has a few hundred."""
    keys, mapped = _table(table)
    encoded = pc.dictionary_encode(pa.chunked_array([values], pa.string()).combine_chunks())
    distinct = spelling_key(encoded.dictionary)
    position = pc.index_in(distinct, value_set=keys)
    known = pc.or_(pc.is_valid(position), pc.is_null(distinct))
    result = pc.if_else(known, pc.take(mapped, position), UNMAPPED)
    return pc.take(result, encoded.indices), pc.take(known, encoded.indices)


def _unmapped(values: pa.Array | pa.ChunkedArray, table: str) -> dict[str, int]:
    _, known = _mapped(values, table)
    spellings = pc.filter(
        pa.chunked_array([values], pa.string()).combine_chunks(), pc.invert(known)
    )
    return {s["values"]: s["counts"] for s in pc.value_counts(spellings).to_pylist()}


def vehicle_categories(types: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The class of each vehicle type: null where blank, `other` where no spelling maps."""
    return _mapped(types, "vehicle_types.csv")[0]


def unmapped_vehicle_types(types: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """The spellings of `types` that no row maps, as spelled, with their counts."""
    return _unmapped(types, "vehicle_types.csv")


def canonical_factors(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each factor in NYPD's spelling: null where blank, Unspecified or not a factor, `other`
    where no spelling maps."""
    return _mapped(values, "contributing_factors.csv")[0]


def unmapped_factors(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """The factors of `values` that no row maps, as spelled, with their counts."""
    return _unmapped(values, "contributing_factors.csv")
