"""Land a run's days: write each day's file, and record its materialization once it is written.

Dagster records the materializations of an asset's output when the output is handled, one
partition after another after the last day is written (docs/performance.md). Yielded from the
asset's body instead, each is recorded as soon as its file is written, while later days are
still being fetched and uploaded. The asset's
output is not required and never produced, so Dagster adds no events of its own.
"""

from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from datetime import date
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster._core.events import DagsterEvent

from nyc_collisions_dagster.lake.storage import PartitionStore, StorageError, swept_message
from nyc_collisions_dagster.lake.writer import ParallelWriter
from nyc_collisions_dagster.metadata import day_counts_table, markdown_preview
from nyc_collisions_dagster.raw.days import ranges_text
from nyc_collisions_dagster.raw.recording import MAX_BATCH_DAYS, recorded_together
from nyc_collisions_dagster.raw.stream import DayStream, Woken

# The tag Dagster reads an event's data version from. A day's version is a digest of its file,
# so a day landed again with the same rows keeps it, and what reads the day is not made stale.
_DATA_VERSION_TAG = "dagster/data_version"


class LandingError(RuntimeError):
    """A run stopped before every day was written; the days written are materialized."""


def land(
    context: dg.AssetExecutionContext, stream: DayStream, store: PartitionStore, writers: int
) -> Iterator[dg.AssetMaterialization | DagsterEvent]:
    """Write every day of `stream` (the run's partitions), yielding each day's materialization.

    The newest day's comes last, with the run's summary, so that it is the asset's latest event,
    the one the UI shows first; run-level metadata on every partition's event would cost
    seconds on a long range. If the run fails, the days written are materialized still, and the
    error names the others: a backfill of the failed and missing partitions fetches only those.
    """
    keys = set(context.partition_keys)
    newest = max(keys)
    try:
        swept = store.ensure_writable()
    except StorageError as exc:
        raise LandingError(f"{store.asset}: no day written.") from _told(exc)
    if swept:
        context.log.info(swept_message(store, swept))
    preview: dg.MarkdownMetadataValue | None = None
    # Each file written wakes the loop below, which records its event at once.
    with ParallelWriter(store, writers, context.log, len(keys), stream.wake) as writer:
        try:
            with closing(stream.arrivals()) as arrivals:
                since_looked = 0
                for arrival in arrivals:
                    if not isinstance(arrival, Woken):
                        day, table = arrival
                        _submit(writer, keys, day, table)
                        since_looked += 1
                        if preview is None and table.num_rows:
                            preview = markdown_preview(table)
                    # While days keep arriving, the files written meanwhile wait to be recorded
                    # together (raw/recording.py), up to a batch of them.
                    if not stream.has_ready() or since_looked >= MAX_BATCH_DAYS:
                        since_looked = 0
                        written = writer.written()
                        yield from _materializations(context, store, writer, written, newest)
            yield from _materializations(context, store, writer, writer.finish(), newest)
            if writer.failed:
                raise _failed_writes(writer.failed)
            if missing := keys - writer.digests.keys():
                raise StorageError(f"No rows were produced for partitions {sorted(missing)}")
        except Exception as exc:
            yield from _materializations(context, store, writer, writer.abandon(), newest)
            if newest in writer.digests:
                yield _materialization(store, writer, newest)
            raise LandingError(_not_written(store, keys, writer.digests)) from _told(exc)
    summary = {
        "run_partitions": len(writer.rows),
        "run_rows": sum(writer.rows.values()),
        "rows_per_second": round(sum(writer.rows.values()) / writer.elapsed()),
        **({"preview": preview} if preview else {}),
        **({"run_rows_by_day": day_counts_table(writer.rows)} if len(writer.rows) > 1 else {}),
        **stream.metadata(),
    }
    yield _materialization(store, writer, newest, summary)


def _submit(writer: ParallelWriter, keys: set[str], day: date, table: pa.Table) -> None:
    key = day.isoformat()
    if key not in keys or key in writer.rows:
        raise StorageError(f"{key} is not a partition of this run, or came twice")
    writer.submit(key, table)


def _materializations(
    context: dg.AssetExecutionContext,
    store: PartitionStore,
    writer: ParallelWriter,
    written: Iterable[str],
    newest: str,
) -> list[dg.AssetMaterialization | DagsterEvent]:
    days = [_materialization(store, writer, key) for key in written if key != newest]
    return recorded_together(context, days)


def _materialization(
    store: PartitionStore,
    writer: ParallelWriter,
    key: str,
    summary: Mapping[str, Any] | None = None,
) -> dg.AssetMaterialization:
    return day_materialization(store, key, writer.rows[key], writer.digests[key], summary)


def day_materialization(
    store: PartitionStore,
    key: str,
    rows: int,
    digest: str,
    metadata: Mapping[str, Any] | None = None,
) -> dg.AssetMaterialization:
    """The record of a day whose file holds `rows` rows and has the digest `digest`."""
    return dg.AssetMaterialization(
        asset_key=store.asset,
        partition=key,
        metadata={
            "dagster/row_count": rows,
            "path": dg.MetadataValue.path(store.uri(key)),
            **(metadata or {}),
        },
        tags={_DATA_VERSION_TAG: digest},
    )


def _told(exc: Exception) -> Exception:
    """`exc`, without its stack if its message says it all (a StorageError names the path and
    the cause). Dagster prints a failed step's error chain with the stack of each exception, the
    root cause's last: without one, its message is the last line printed, not a screen above."""
    return exc.with_traceback(None) if isinstance(exc, StorageError) else exc


def _failed_writes(failed: Mapping[str, StorageError]) -> StorageError:
    """The error of the days that could not be written: the first day's, with how many more."""
    first = failed[min(failed)]
    more = f" ({len(failed) - 1} other days could not be written either)" if len(failed) > 1 else ""
    return StorageError(f"{first}{more}")


def _not_written(store: PartitionStore, keys: set[str], written: Iterable[str]) -> str:
    done = set(written)
    shown = ranges_text({date.fromisoformat(k) for k in keys if k not in done})
    return (
        f"{store.asset}: {len(done)} of {len(keys)} days written and materialized; not written: "
        f"{shown}. Materializing the failed and missing partitions fetches only those."
    )
