"""The summary tier: crashes and their casualties by crash day and borough, for the whole history.

A few hundred numbers a month answer "KSI by borough by year" without reading the monthly tables.
The summary is rebuilt from the months of processed crashes whose files changed since it was last
written; the other months' rows are kept as they are.
"""

from collections.abc import Callable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

# The summary's sums: its column, and the processed crashes column it adds up.
SUMS = {
    "injured": "number_of_persons_injured",
    "killed": "number_of_persons_killed",
    "pedestrians_injured": "number_of_pedestrians_injured",
    "pedestrians_killed": "number_of_pedestrians_killed",
    "cyclists_injured": "number_of_cyclist_injured",
    "cyclists_killed": "number_of_cyclist_killed",
    "motorists_injured": "number_of_motorist_injured",
    "motorists_killed": "number_of_motorist_killed",
    "persons_seriously_injured": "persons_seriously_injured",
    "ksi": "ksi",
}
KEYS = ["crash_date", "crash_borough"]
COLUMNS_READ = [*KEYS, *SUMS.values()]

SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("crash_date", pa.date32()),
        pa.field("year", pa.int32()),
        pa.field("month", pa.int32()),
        pa.field("crash_borough", pa.string()),
        pa.field("crashes", pa.int64()),
        *(pa.field(name, pa.int64()) for name in SUMS),
        pa.field("ksi_crashes", pa.int64()),
    ]
)
SUMMARY_NOTES = {
    "crash_date": "The crash day.",
    "year": "The year of crash_date.",
    "month": "The month of crash_date, 1 to 12.",
    "crash_borough": "The borough the crash lies in, as in processed crashes, or null when "
    "unknown, kept as its own group.",
    "crashes": "Crashes (rows of processed crashes).",
    **{name: f"The sum of {column} over the crashes." for name, column in SUMS.items()},
    "ksi_crashes": "Crashes with at least one person killed or seriously injured (ksi > 0).",
}

# A version of each month's processed file: when it differs, the month is read again.
Versions = Mapping[str, str]


def summarize(crashes: pa.Table) -> pa.Table:
    """One row per crash day and borough of `crashes` (processed crashes, any months)."""
    table = crashes.select(COLUMNS_READ).append_column(
        "is_ksi", pc.cast(pc.greater(pc.fill_null(crashes["ksi"], 0), 0), pa.int64())
    )
    # min_count=0: a group whose values are all null sums to 0, as no casualty was reported.
    every = pc.ScalarAggregateOptions(skip_nulls=True, min_count=0)
    grouped = table.group_by(KEYS, use_threads=False).aggregate(
        [([], "count_all"), *((c, "sum", every) for c in SUMS.values()),
         ("is_ksi", "sum", every)]
    )  # fmt: skip
    dates = grouped["crash_date"]
    columns = {
        "crash_date": dates,
        "year": pc.cast(pc.year(dates), pa.int32()),
        "month": pc.cast(pc.month(dates), pa.int32()),
        "crash_borough": grouped["crash_borough"],
        "crashes": grouped["count_all"],
        **{name: grouped[f"{column}_sum"] for name, column in SUMS.items()},
        "ksi_crashes": grouped["is_ksi_sum"],
    }
    table = pa.table(
        [pc.cast(columns[f.name], f.type) for f in SUMMARY_SCHEMA], schema=SUMMARY_SCHEMA
    )
    return sort(table)


def sort(summary: pa.Table) -> pa.Table:
    return summary.sort_by([("crash_date", "ascending"), ("crash_borough", "ascending")])


def month_of(summary: pa.Table) -> pa.Array:
    """Each row's crash month as YYYY-MM, the processed layer's partition key."""
    return pc.strftime(summary["crash_date"], format="%Y-%m")


def rebuild(
    previous: pa.Table | None,
    recorded: Versions,
    current: Versions,
    read_months: Callable[[list[str]], pa.Table],
) -> tuple[pa.Table, list[str]]:
    """The summary of the months in `current`, and the months that had to be read for it.

    The rows of a month whose version is the one `recorded` with `previous` are kept; a month
    that changed or is new is read (`read_months`, processed crashes of those months) and
    summarized again; a month no longer in `current` is dropped.
    """
    changed = sorted(month for month, version in current.items() if recorded.get(month) != version)
    kept: list[pa.Table] = []
    if previous is not None and previous.num_rows:
        unchanged = [month for month in current if month not in changed]
        kept.append(previous.filter(pc.is_in(month_of(previous), pa.array(unchanged, pa.string()))))
    fresh = [summarize(read_months(changed))] if changed else []
    parts = [part.cast(SUMMARY_SCHEMA) for part in (*kept, *fresh)]
    table = pa.concat_tables(parts) if parts else SUMMARY_SCHEMA.empty_table()
    return sort(table), changed
