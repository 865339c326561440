"""Generated days served from a file on disk: the whole history of the three datasets in little
memory, for the scaling benchmark.

The in-memory table keeps about 870 bytes a row (the row, its record, its rendered CSV line): the
16 million rows of 2012-2026 would take 14 GB. This one renders each row's CSV line once, at
start, into a file, and keeps 16 bytes a row in memory (its key and where its line starts), so a
page is one read of a byte range. It answers what a range load asks, and refuses the rest with a
400: ``SELECT *`` as CSV in stored order, within crash_date bounds, after a keyset cursor
``crash_date > D OR key > K`` (with ``crash_date >= D``) or at an offset; and ``count(*)`` within
crash_date bounds, grouped by crash_date or not.
"""

from __future__ import annotations

import os
import random
import shutil
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from datetime import date, timedelta
from functools import partial
from itertools import accumulate
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

import numpy as np

from nyc_collisions_dagster_tests.soda_fake import soql
from nyc_collisions_dagster_tests.soda_fake.generator import (
    DATASET_IDS,
    DATE_FIELD,
    FIELDS,
    TYPES,
    UNIQUE_KEYS,
    Row,
    generate,
)
from nyc_collisions_dagster_tests.soda_fake.server import (
    Output,
    csv_header,
    csv_line,
    date_bounds,
    render_values,
)

_DATE = soql.Column(DATE_FIELD)


def _unsupported(what: str) -> soql.SoqlError:
    return soql.SoqlError("query.soql.unsupported", f"the spooled table does not answer {what}")


class _Spool:
    """Consecutive days of one dataset rendered into a file, and the index of its lines."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self.key_i = FIELDS[name].index(UNIQUE_KEYS[name])
        self.days: list[str] = []  # every day's crash_date as served, ascending
        self.day_starts = array("q", [0])  # row number of each day's first row, and the end
        self.line_starts = array("q", [0])  # byte offset of each row's line, and the end
        self.keys = array("q")

    def write_day(self, file: IO[bytes], day: date, rows: list[Row]) -> None:
        rows = sorted(rows, key=lambda row: int(row[self.key_i]))  # type: ignore[arg-type]
        lines = [(csv_line(row) + "\n").encode() for row in rows]
        file.write(b"".join(lines))
        written = self.line_starts[-1]
        self.line_starts.extend(written + end for end in accumulate(map(len, lines)))
        self.keys.extend(int(row[self.key_i]) for row in rows)  # type: ignore[arg-type]
        self.days.append(f"{day.isoformat()}T00:00:00.000")
        self.day_starts.append(len(self.keys))


class SpooledTable:
    """One dataset's rows in (crash_date, unique key) order: CSV lines in a file, an index here.

    Built from the spools of consecutive day ranges, in order: their files are joined into one.
    """

    def __init__(self, name: str, path: Path, parts: list[_Spool]) -> None:
        self.name, self.id = name, DATASET_IDS[name]
        self.key = soql.Column(UNIQUE_KEYS[name])
        self._stars = [
            Output(f, t, None, soql.Column(f)) for f, t in zip(FIELDS[name], TYPES[name])
        ]
        self._header = (csv_header(FIELDS[name]) + "\n").encode()
        with path.open("wb") as joined:
            for part in parts:
                with part.path.open("rb") as piece:
                    shutil.copyfileobj(piece, joined, 1 << 24)
                part.path.unlink()
        self._fd = os.open(path, os.O_RDONLY)
        self._days = [day for part in parts for day in part.days]
        self._day_starts = _joined([part.day_starts for part in parts])
        self._line_starts = _joined([part.line_starts for part in parts])
        self._keys = np.concatenate([np.frombuffer(part.keys, np.int64) for part in parts])
        # As the in-memory table stamps rows loaded at start: 06:00 UTC the morning after.
        last = date.fromisoformat(self._days[-1][:10]) + timedelta(days=1)
        self.last_modified = f"{last.isoformat()}T06:00:00.000Z"

    def close(self) -> None:
        os.close(self._fd)

    def query(self, q: soql.Query, rng: random.Random) -> tuple[list[Output], Any, bool]:
        """(outputs, page, star): a star page is the range of row numbers to send."""
        first_day, end_day, cursor = self._bounds(q.where)
        if q.group or any(item.star is None for item in q.select):
            return self._counts(q, first_day, end_day)
        if [item.star for item in q.select] != ["*"] or q.order != [
            (_DATE, False),
            (self.key, False),
        ]:
            raise _unsupported("a page other than SELECT * in (crash_date, key) order")
        start = max(self._day_starts[first_day], cursor) + q.offset
        end = max(start, min(self._day_starts[end_day], start + q.limit))
        return self._stars, range(start, end), True

    def render(self, fmt: str, names: list[str], page: Any, star: bool) -> bytes:
        if not star:
            return render_values(fmt, names, page)
        if fmt != "csv":
            raise _unsupported("SELECT * as JSON")
        begin, end = self._line_starts[page.start], self._line_starts[page.stop]
        return self._header + os.pread(self._fd, end - begin, begin)

    def _bounds(self, where: soql.Node | None) -> tuple[int, int, int]:
        """(first day, end day, first row after the keyset cursor) from the $where conjuncts."""
        first_day, end_day, cursor, cursor_day = 0, len(self._days), 0, 0
        for node in _conjuncts(where):
            if (bounds := date_bounds(node)) is not None:
                low, high = bounds
                if low is not None:
                    find = bisect_right if low[1] else bisect_left
                    first_day = max(first_day, find(self._days, low[0]))
                if high is not None:
                    find = bisect_left if high[1] else bisect_right
                    end_day = min(end_day, find(self._days, high[0]))
            elif (keyset := self._keyset(node)) is not None:
                cursor, cursor_day = self._after(*keyset)
            else:
                raise _unsupported(f"the condition {node}")
        if first_day < cursor_day:  # without crash_date >= D, the keyset is no stored-order suffix
            raise _unsupported("a keyset without its crash_date >= bound")
        return first_day, max(first_day, end_day), cursor

    def _keyset(self, node: soql.Node) -> tuple[str, float] | None:
        """(D, K) of ``crash_date > D OR key > K``, else None."""
        if not (isinstance(node, soql.Op) and node.op == "or" and not node.negated):
            return None
        later, greater = node.args
        parts = [
            (p.args[0], p.args[1].value)
            for p in (later, greater)
            if isinstance(p, soql.Op)
            and p.op == ">"
            and not p.negated
            and isinstance(p.args[1], soql.Literal)
        ]
        if len(parts) != 2 or parts[0][0] != _DATE or parts[1][0] != self.key:
            return None
        day = soql.normalize_timestamp(str(parts[0][1]))
        return (day, float(parts[1][1])) if day else None  # type: ignore[arg-type]

    def _after(self, day: str, key: float) -> tuple[int, int]:
        """(first row after (day, key), the first day at or after day)."""
        d = bisect_left(self._days, day)
        if d < len(self._days) and self._days[d] == day:
            lo, hi = self._day_starts[d], self._day_starts[d + 1]
            return lo + int(np.searchsorted(self._keys[lo:hi], key, side="right")), d
        return self._day_starts[d], d

    def _counts(
        self, q: soql.Query, first_day: int, end_day: int
    ) -> tuple[list[Output], list[tuple[str, ...]], bool]:
        count = soql.Call("count", (), star=True)
        exprs = [item.expr for item in q.select]
        if (
            not set(exprs) <= {_DATE, count}
            or q.group not in ([], [_DATE])
            or (_DATE in exprs) != bool(q.group)
        ):
            raise _unsupported("an aggregate other than count(*), by crash_date or in all")
        outputs = [
            Output(
                item.alias or soql.default_name(item.expr),  # type: ignore[arg-type]
                "floating_timestamp" if item.expr == _DATE else "number",
                None,
                item.expr,
            )
            for item in q.select
        ]  # type: ignore[arg-type]
        starts = self._day_starts
        if q.group:
            groups = [
                (self._days[d], starts[d + 1] - starts[d])
                for d in range(first_day, end_day)
                if starts[d + 1] > starts[d]
            ]  # Socrata has no group for a day without rows
        else:
            groups = [("", starts[end_day] - starts[first_day])]
        rows = [tuple(day if expr == _DATE else str(n) for expr in exprs) for day, n in groups]
        return outputs, rows[q.offset : q.offset + q.limit], False


def _conjuncts(where: soql.Node | None) -> Iterator[soql.Node]:
    stack = [where] if where is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, soql.Op) and node.op == "and" and not node.negated:
            stack += node.args
        else:
            yield node


def _joined(parts: list[array]) -> np.ndarray:
    """Running offsets ([0, ..., end]) of consecutive parts as one: each part's shifted by the
    end of the parts before it."""
    joined, end = [np.zeros(1, np.int64)], 0
    for offsets in parts:
        joined.append(np.frombuffer(offsets, np.int64)[1:] + end)
        end += offsets[-1]
    return np.concatenate(joined)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _spool_month(
    folder: Path, datasets: Sequence[str], end: date, options: dict[str, Any], first: date
) -> list[_Spool]:
    """The days of the month from ``first`` (up to ``end``) into a spool file per dataset."""
    stop = min(end, _next_month(first))
    spools = [_Spool(name, folder / f"{name}.{first:%Y-%m}.part") for name in datasets]
    with ExitStack() as files:
        opened = [files.enter_context(spool.path.open("wb")) for spool in spools]
        day = first
        while day < stop:
            rows = generate(day, day + timedelta(days=1), datasets=datasets, **options)
            for spool, file in zip(spools, opened):
                spool.write_day(file, day, rows[spool.name])
            day += timedelta(days=1)
    return spools


def spool_generated(
    folder: Path,
    start: date,
    end: date,
    datasets: Sequence[str],
    workers: int = 1,
    **generate_options: Any,
) -> list[SpooledTable]:
    """Generate [start, end) into spooled tables, a month at a time on ``workers`` processes
    (1: in this one): memory holds a month's rows per process. ``generate_options`` go to
    ``generator.generate`` (``seed``, ``crashes_per_day``)."""
    firsts = [start]
    while (following := _next_month(firsts[-1])) < end:
        firsts.append(following)
    spool = partial(_spool_month, folder, list(datasets), end, generate_options)
    if workers == 1:
        months = [spool(first) for first in firsts]
    else:
        # Spawned, not forked: the caller may be running threads.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            months = list(pool.map(spool, firsts))
    return [
        SpooledTable(name, folder / f"{name}.csv", [month[i] for month in months])
        for i, name in enumerate(datasets)
    ]
