"""Follow a launched run through the instance until its command ends, showing its progress."""

import time

import dagster as dg

from nyc_collisions_dagster.cli.launch import Running
from nyc_collisions_dagster.cli.progress import RunProgress

POLL_SECONDS = 0.5
UNPARTITIONED = ""  # an unpartitioned asset's one materialization counts as this partition


def follow(instance: dg.DagsterInstance, running: Running, progress: RunProgress) -> int:
    """Show each materialization as the run records it; the command's exit status at the end."""
    cursor: str | None = None
    while True:
        # Read the exit status first: once the command has ended, one more read sees every event.
        ended = running.finished()
        run_id = running.find_run(instance)
        if run_id is not None:
            cursor = _show_new(instance, run_id, cursor, progress)
        progress.tick()
        if ended:
            return running.process.wait()
        time.sleep(POLL_SECONDS)


def _show_new(
    instance: dg.DagsterInstance, run_id: str, cursor: str | None, progress: RunProgress
) -> str | None:
    while True:
        connection = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        for record in connection.records:
            materialization = record.asset_materialization
            if materialization is None:
                continue
            metadata = materialization.metadata
            rows = metadata.get("dagster/row_count")
            path = metadata.get("path")
            progress.landed(
                materialization.asset_key.to_user_string(),
                materialization.partition or UNPARTITIONED,
                rows.value if rows is not None and isinstance(rows.value, int) else None,
                str(path.value) if path is not None else "",
            )
        cursor = connection.cursor
        if not connection.has_more:
            return cursor
