"""The lake as resources: the raw layer's IO manager, which loads raw days for downstream assets
and hands the raw assets their files, and where the processed layer's months go."""

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from nyc_collisions_dagster.constants import (
    DEFAULT_PROCESSED_URL,
    DEFAULT_STORAGE_URL,
    PROCESSED_URL_ENV,
    STORAGE_URL_ENV,
)
from nyc_collisions_dagster.lake.filesystems import S3_ATTEMPTS
from nyc_collisions_dagster.lake.storage import MonthStore, PartitionStore
from nyc_collisions_dagster.lake.summaries import SummaryStore

if TYPE_CHECKING:
    import pandas as pd  # imported by to_pandas only when a downstream asset loads: it is slow


class ParquetIOManager(dg.ConfigurableIOManager):
    """The raw layer's day files: written by the raw assets, loaded as inputs of others."""

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
    s3_attempts: int = Field(
        default=S3_ATTEMPTS,
        gt=0,
        description="Attempts of each S3 request, the first included, backing off exponentially "
        "between them: 5 ride out about 15 s of 503 SlowDown or cut connections. Past them the "
        "day fails, and the range goes on with the others.",
    )

    @property
    def url(self) -> str:
        return self.storage_url or dg.EnvVar(STORAGE_URL_ENV).get_value() or DEFAULT_STORAGE_URL

    def store(self, asset: str) -> PartitionStore:
        setting = "the io_manager's storage_url" if self.storage_url else STORAGE_URL_ENV
        return PartitionStore(self.url, asset, setting, self.s3_attempts)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        # The raw assets write each day themselves and record it as it is written (landing.py);
        # they produce no output. Another asset's output has no place in the raw layer.
        raise dg.DagsterInvariantViolationError(
            f"{context.asset_key.to_user_string()}: the raw layer's IO manager stores no "
            "outputs; give this asset an io_manager_key of its own"
        )

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

    @property
    def url(self) -> str:
        return self.storage_url or dg.EnvVar(PROCESSED_URL_ENV).get_value() or DEFAULT_PROCESSED_URL

    def store(self, asset: str) -> MonthStore:
        return MonthStore(self.url, asset, self._setting)

    def summary_store(self) -> SummaryStore:
        """The summary tier's file, beside the monthly tables."""
        return SummaryStore(self.url, self._setting)

    @property
    def _setting(self) -> str:
        return "the processed_lake's storage_url" if self.storage_url else PROCESSED_URL_ENV
