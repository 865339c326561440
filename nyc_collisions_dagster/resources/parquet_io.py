"""The lake as resources: the raw layer's IO manager, which writes each day as it arrives, and
where the processed layer's months go."""

from collections.abc import Iterator
from contextlib import closing
from datetime import date
from typing import TYPE_CHECKING, Protocol

import dagster as dg
import pyarrow as pa
from pydantic import Field

from nyc_collisions_dagster.constants import (
    DEFAULT_PROCESSED_URL,
    DEFAULT_STORAGE_URL,
    PROCESSED_URL_ENV,
    STORAGE_URL_ENV,
)
from nyc_collisions_dagster.metadata import day_counts_table, markdown_preview
from nyc_collisions_dagster.resources.storage import (
    MonthStore,
    ParallelWriter,
    PartitionStore,
    StorageError,
)

if TYPE_CHECKING:
    import pandas as pd  # imported by to_pandas when a downstream asset loads: 0.3 s a process


class DayTables(Protocol):
    """What an asset hands over: its days' tables, then metadata about how they were made."""

    def __iter__(self) -> Iterator[tuple[date, pa.Table]]: ...

    def metadata(self) -> dict[str, object]: ...


class ParquetIOManager(dg.ConfigurableIOManager):
    """Writes each day of a (possibly ranged) run to its own Parquet file as the days arrive."""

    storage_url: str | None = Field(
        default=None,
        description=f"A local folder or s3://bucket/prefix. Unset: ${STORAGE_URL_ENV}, "
        f"else {DEFAULT_STORAGE_URL} under the working directory.",
    )
    max_concurrent_writes: int = Field(
        default=4,
        gt=0,
        description="Files uploaded at once. Each S3 upload holds its own buffers: more writers "
        "cost memory and gain little, as fetching is the slower side.",
    )

    def store(self, asset: str) -> PartitionStore:
        url = self.storage_url or dg.EnvVar(STORAGE_URL_ENV).get_value() or DEFAULT_STORAGE_URL
        return PartitionStore(url, asset)

    def handle_output(self, context: dg.OutputContext, obj: DayTables) -> None:
        store = self.store(context.asset_key.path[-1])
        store.ensure_writable()
        expected = set(context.asset_partition_keys)
        writer = ParallelWriter(store, self.max_concurrent_writes, context.log, len(expected))
        preview = None
        with writer, closing(iter(obj)) as days:
            for day, table in days:
                key = day.isoformat()
                if key not in expected or key in writer.rows:
                    raise StorageError(f"{key} is not a partition of this run, or came twice")
                writer.submit(key, table)
                if preview is None and table.num_rows:
                    preview = markdown_preview(table)
        if missing := expected - set(writer.rows):
            raise StorageError(f"No rows were produced for partitions {sorted(missing)}")
        self._add_metadata(context, store, writer, obj, preview)

    def _add_metadata(
        self,
        context: dg.OutputContext,
        store: PartitionStore,
        writer: ParallelWriter,
        obj: DayTables,
        preview: dg.MarkdownMetadataValue | None,
    ) -> None:
        # Each partition's event gets what differs by day. The run's summary goes on the newest
        # partition only: output metadata would be copied to every event of a range run, and on
        # a 4-year run that copying cost several seconds of Dagster's bookkeeping.
        for key, rows in writer.rows.items():
            context.step_context.add_asset_metadata(
                {"dagster/row_count": rows, "path": dg.MetadataValue.path(store.uri(key))},
                partition_key=key,
            )
        total = sum(writer.rows.values())
        summary = {
            "run_partitions": len(writer.rows),
            "run_rows": total,
            "rows_per_second": round(total / writer.elapsed()),
            **({"preview": preview} if preview else {}),
            **({"run_rows_by_day": day_counts_table(writer.rows)} if len(writer.rows) > 1 else {}),
            **obj.metadata(),
        }
        context.step_context.add_asset_metadata(summary, partition_key=max(writer.rows))

    def load_input(self, context: dg.InputContext) -> "pd.DataFrame":
        store = self.store(context.asset_key.path[-1])
        return store.read(sorted(context.asset_partition_keys)).to_pandas()


class ProcessedLake(dg.ConfigurableResource):
    """Where the processed layer's monthly files live."""

    storage_url: str | None = Field(
        default=None,
        description=f"A local folder or s3://bucket/prefix. Unset: ${PROCESSED_URL_ENV}, "
        f"else {DEFAULT_PROCESSED_URL} under the working directory.",
    )

    def store(self, asset: str) -> MonthStore:
        url = self.storage_url or dg.EnvVar(PROCESSED_URL_ENV).get_value() or DEFAULT_PROCESSED_URL
        return MonthStore(url, asset)
