"""SODA3 pages as CSV or as JSON: which reaches the typed Arrow tables sooner, for what bytes.

    python -m benchmarks soda3_formats             # a year of crashes, about 1 minute
    python -m benchmarks soda3_formats --months 3  # a smoke test

dev.socrata.com/docs/formats lists both CSV and JSON for SODA3, so the project measured before
choosing. The SODA test server runs in this process with no modelled latency; every page of the
window is fetched through the project's client (api=soda3) once as query.csv and once as
query.json, as the project pages it: 50,000-row keyset pages, each downloaded to a temporary
file, then parsed. CSV goes through the project's own path (pyarrow.csv in 128 KB blocks, typed
block by block). JSON is decoded one object at a time from the array and typed the same way;
omitted fields become nulls and every value is kept as the text Socrata sent, numbers included.
The check: both give the same typed table.
"""

import argparse
import json
import logging
import resource
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import IO

import pyarrow as pa

from benchmarks import harness
from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.raw.pages import ChunkFetch
from nyc_collisions_dagster.raw.schema import SCHEMAS, TypingReport, to_typed
from nyc_collisions_dagster.raw.stream import DayStream
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster.socrata.client import day_window_where
from nyc_collisions_dagster_tests.soda_fake.generator import generate
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer

START = date(2021, 1, 1)
CRASHES = DATASETS["crashes"]
_READ = 1 << 20
_BATCH_ROWS = 10_000


def json_tables(page: IO[bytes], schema: pa.Schema, typing: TypingReport) -> Iterator[pa.Table]:
    """Typed tables from a JSON array of row objects, decoded one object at a time."""
    text = pa.string()
    names = set(schema.names)
    decoder = json.JSONDecoder()
    buffer, position, rows = "", 0, []
    while True:
        chunk = page.read(_READ).decode("utf-8")
        buffer = buffer[position:] + chunk
        position = 0
        while True:
            while position < len(buffer) and buffer[position] in "[,] \n\r\t":
                position += 1
            try:
                row, position = decoder.raw_decode(buffer, position)
            except ValueError:
                break  # an object cut by the chunk's end, or the end
            rows.append(
                {k: v if isinstance(v, str) else str(v) for k, v in row.items() if k in names}
            )
            if len(rows) == _BATCH_ROWS:
                yield _typed(rows, schema, text, typing)
                rows = []
        if not chunk:
            break
    if rows:
        yield _typed(rows, schema, text, typing)


def _typed(
    rows: list[dict], schema: pa.Schema, text: pa.DataType, typing: TypingReport
) -> pa.Table:
    raw = pa.Table.from_pylist(rows, schema=pa.schema([(n, text) for n in schema.names]))
    return to_typed(raw, schema, typing)


def measure(server: SodaServer, end: date) -> dict[str, dict[str, float]]:
    client = SocrataResource(domain=server.url, api="soda3", app_token="formats").get_client()
    stream = DayStream(client, CRASHES, START, end, logging.getLogger("formats"))
    csv_reader = ChunkFetch(stream, START, end, lambda item: None, threading.Event())
    schema = SCHEMAS[CRASHES.asset]
    figures: dict[str, dict[str, float]] = {}
    tables: dict[str, pa.Table] = {}
    for fmt in ("csv", "json"):
        download = parse = 0.0
        size = 0
        parts: list[pa.Table] = []
        cursor: tuple[str, int] | None = None
        while True:
            where = day_window_where(START, end)
            if cursor:
                where += (
                    f" AND (crash_date > '{cursor[0]}' OR (crash_date = '{cursor[0]}' "
                    f"AND collision_id > {cursor[1]}))"
                )
            params = {"$where": where, "$order": "crash_date, collision_id", "$limit": "50000"}
            started = time.perf_counter()
            with client.spool(CRASHES.dataset_id, fmt, params) as page:
                download += time.perf_counter() - started
                size += page.seek(0, 2)
                page.seek(0)
                started = time.perf_counter()
                typed = (
                    csv_reader._typed_blocks(page)
                    if fmt == "csv"
                    else json_tables(page, schema, TypingReport())
                )
                got = [t for t in typed if t.num_rows]
                parse += time.perf_counter() - started
            if not got:
                break
            parts += got
            last = got[-1]
            cursor = (
                last.column("crash_date")[-1].as_py().isoformat() + "T00:00:00",
                last.column("collision_id")[-1].as_py(),
            )
        tables[fmt] = pa.concat_tables(parts)
        figures[fmt] = {
            "rows": tables[fmt].num_rows,
            "mb": size / 1e6,
            "download_s": download,
            "parse_s": parse,
        }
    figures["check"] = {"same": float(tables["csv"].equals(tables["json"]))}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=12, help="window from 2021-01-01")
    args = parser.parse_args()
    output = harness.RESULTS / "soda3_formats.md"
    return harness.run_report(lambda scratch: _measure(args.months), "soda3-formats-", output)


def _measure(months: int) -> str:
    years, month = divmod(months, 12)
    end = date(START.year + years, month + 1, 1)
    harness.progress(f"generating crashes {START} to {end}")
    with SodaServer(generate(START, end, datasets=("crashes",))) as server:
        figures = measure(server, end)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "# SODA3 page formats",
        "",
        "| SODA3 pages as | rows | MB | download s | parse s | parse rows/s |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for fmt in ("csv", "json"):
        f = figures[fmt]
        lines.append(
            f"| {fmt} | {f['rows']:,.0f} | {f['mb']:.1f} | {f['download_s']:.2f} | "
            f"{f['parse_s']:.2f} | {f['rows'] / f['parse_s']:,.0f} |"
        )
    same = "the same typed rows" if figures["check"]["same"] else "DIFFERENT typed rows"
    lines.append(f"\nBoth formats gave {same}. Process peak RSS {peak:.0f} MB.")
    return "\n".join(lines)
