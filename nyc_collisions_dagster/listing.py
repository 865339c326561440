"""Long lists in messages and check results: the first few items and how many more there are."""

from collections.abc import Sequence

SHOWN = 20  # items named; the count says how many there are


def first_and_more(items: Sequence[object], noun: str = "") -> str:
    """`a, b, c and 7 more`: the first SHOWN items, then how many were left out."""
    shown = ", ".join(str(item) for item in items[:SHOWN])
    extra = len(items) - SHOWN
    return shown + (f" and {extra} more{' ' + noun if noun else ''}" if extra > 0 else "")
