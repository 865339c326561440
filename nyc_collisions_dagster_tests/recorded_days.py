"""Days recorded as the raw assets record them, with nothing fetched or written: a null asset that
yields one materialization per day (its row count, path and data version), what the event log
storages' tests and the bookkeeping benchmark run; and a run of it slow enough to be watched or
killed."""

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import dagster as dg
import sqlalchemy as db
from dagster._core.events import DagsterEvent

from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.recording import recorded_together

DAYS = [f"2024-01-{day:02d}" for day in range(1, 31)]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    output_required=False,
)
def days(context: dg.AssetExecutionContext) -> Iterator[dg.AssetMaterialization]:
    for key in context.partition_keys:
        yield day_record(context.asset_key, key)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    output_required=False,
)
def days_grouped(
    context: dg.AssetExecutionContext,
) -> Iterator[dg.AssetMaterialization | DagsterEvent]:
    """`days` recorded as the raw assets record the days written since the run last looked
    (raw/recording.py): every day is written at once here, so every batch is full."""
    keys = context.partition_keys
    yield from recorded_together(context, [day_record(context.asset_key, key) for key in keys])


def day_record(asset: dg.AssetKey, key: str) -> dg.AssetMaterialization:
    """A day's materialization as the raw assets make it, for a file that was never written."""
    return dg.AssetMaterialization(
        asset_key=asset,
        partition=key,
        metadata={"dagster/row_count": 1, "path": dg.MetadataValue.path(f"days/{key}.parquet")},
        tags={"dagster/data_version": key},
    )


def materialize_days(
    instance: dg.DagsterInstance,
    first: str = DAYS[0],
    last: str = DAYS[-1],
    asset: dg.AssetsDefinition = days,
) -> None:
    """`asset` (`days`) over first..last in this process, as one ranged run."""
    range_tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
    result = dg.materialize([asset], instance=instance, tags=range_tags)
    assert result.success


def recorded_days(
    instance: dg.DagsterInstance, asset: str = "days"
) -> list[tuple[str | None, int]]:
    """(day, row count) of every materialization of `asset`, sorted."""
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records
    return sorted(
        (r.partition_key, r.asset_materialization.metadata["dagster/row_count"].value)  # type: ignore[union-attr]
        for r in records
    )


def connections_opened() -> AbstractContextManager[list[int]]:
    """Counts the database connections SQLAlchemy opens in this process meanwhile."""
    return _counted(db.pool.Pool, "connect")


def commits() -> AbstractContextManager[list[int]]:
    """Counts the transactions SQLAlchemy commits in this process meanwhile."""
    return _counted(db.engine.Engine, "commit")


@contextmanager
def _counted(target: type, event: str) -> Iterator[list[int]]:
    counted = [0]

    def count(*_: object) -> None:
        counted[0] += 1

    db.event.listen(target, event, count)
    try:
        yield counted
    finally:
        db.event.remove(target, event, count)


# The same asset, pausing DAY_SECONDS before each day and printing each day once recorded.
SCRIPT = textwrap.dedent(
    """
    import os, time
    import dagster as dg
    from nyc_collisions_dagster.partitions import daily_partitions

    @dg.asset(partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
              output_required=False)
    def days(context):
        for key in context.partition_keys:
            time.sleep(float(os.environ.get("DAY_SECONDS", "0")))
            yield dg.AssetMaterialization(asset_key="days", partition=key,
                                          metadata={"dagster/row_count": 1})
            print(f"recorded {key}", flush=True)

    defs = dg.Definitions(assets=[days])
    """
)


def write_script(folder: Path) -> Path:
    script = folder / "slow_days.py"
    script.write_text(SCRIPT)
    return script


def start_slow_run(folder: Path, home: Path, day_seconds: float) -> subprocess.Popen:
    """`dagster asset materialize` of DAYS in a session of its own (a kill of its group takes
    the step's process with the run's), printing `recorded DAY` lines on its stdout."""
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-f"]
    command += [str(write_script(folder)), "--select", "days"]
    command += ["--partition-range", f"{DAYS[0]}...{DAYS[-1]}"]
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAY_SECONDS": str(day_seconds)}
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
