"""The summary tier's part of the lake benchmark: its build and rebuild, "KSI by borough by year"
over the summary and over processed crashes, and the two layouts at the whole history's size.

Runs inside `python -m benchmarks lake` once the processed build exists, on the same moto S3.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from benchmarks import harness
from nyc_collisions_dagster.constants import START_DATE
from nyc_collisions_dagster.lake.storage import PartitionStore
from nyc_collisions_dagster.lake.summaries import SummaryStore
from nyc_collisions_dagster.processed.summary import sort

KSI_BY_BOROUGH_BY_YEAR = {
    "summary": """SELECT year, crash_borough, sum(ksi) AS ksi, sum(crashes) AS crashes
        FROM summary GROUP BY ALL ORDER BY ALL""",
    "processed crashes": """SELECT year, crash_borough, sum(ksi) AS ksi, count(*) AS crashes
        FROM crashes GROUP BY ALL ORDER BY ALL""",
}
SUMMARY_SELECT = "processed/summary"


@dataclass(frozen=True)
class Asked:
    """One way of asking: its best wall time, its S3 requests, and its answer."""

    label: str
    seconds: float
    gets: int
    lists: int
    objects: int
    answer: list[tuple]


def best_of(repeats: int, run: Callable[[], list[tuple]]) -> tuple[float, list[tuple]]:
    best, answer = float("inf"), run()  # the warm-up's answer is the one compared
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best, answer


def whole_history(summary: pa.Table, through: date) -> pa.Table:
    """The measured summary's days laid over every year from the data's start to `through`: a
    summary as large as the real history's, for its reads' GETs and time."""
    first = date.fromisoformat(START_DATE)
    rows = summary.to_pylist()
    years = sorted({row["crash_date"].year for row in rows})
    laid = []
    for year in range(first.year, through.year + 1):
        source = years[(year - first.year) % len(years)]
        for row in rows:
            day = row["crash_date"]
            if day.year != source or (day.month, day.day) == (2, 29):
                continue
            moved = day.replace(year=year)
            if first <= moved <= through:
                laid.append({**row, "crash_date": moved, "year": year})
    return sort(pa.Table.from_pylist(laid, schema=summary.schema))


def per_year_read(store: PartitionStore) -> Callable[[], list[tuple]]:
    """The same question over a one-file-a-year layout, read as the lake command reads S3."""

    def run() -> list[tuple]:
        dataset = ds.dataset(store.root, format="parquet", filesystem=store.fs)
        connection = duckdb.connect()
        connection.register("summary", dataset)
        try:
            return connection.execute(KSI_BY_BOROUGH_BY_YEAR["summary"]).fetchall()
        finally:
            connection.close()

    return run


def write_layouts(root: str, summary: pa.Table) -> tuple[str, PartitionStore, dict[str, int]]:
    """The whole-history summary as one file (the project's layout) and as one file a year;
    (the one-file layer's URL, the per-year store, bytes of each layout)."""
    one_file_url = f"{root}/history-{uuid.uuid4().hex[:6]}/collisions_processed_data"
    written = SummaryStore(one_file_url)
    written.write(summary, {})
    per_year = PartitionStore(f"{root}/history-per-year-{uuid.uuid4().hex[:6]}", "summary")
    for year in sorted(set(summary["year"].to_pylist())):
        per_year.write(str(year), summary.filter(pa.compute.equal(summary["year"], year)))
    sizes = {
        "one file": written.folder.fs.get_file_info(written.folder.path("summary")).size,
        "one file a year": sum(
            info.size
            for info in per_year.fs.get_file_info(pa.fs.FileSelector(per_year.root, recursive=True))
        ),
    }
    return one_file_url, per_year, sizes


def read_summary(url: str) -> pa.Table:
    table, _ = SummaryStore(url).read()
    if table is None:
        raise harness.ChildFailed(f"no summary at {url}")
    return table


def summary_rows(url: str) -> int:
    store = SummaryStore(url).folder
    with store.fs.open_input_file(store.path("summary")) as file:
        return pq.read_metadata(file).num_rows
