"""Recording a ranged run's days a writer wake-up at a time: the days whose files were written
since the run last looked are recorded together, in one write to the event log (a group commit).

A range run records each day as its file is written, so that progress shows in the UI and a
killed run keeps every day it recorded. Storing an event costs a few milliseconds however small
it is, so when files are written faster than their events can be stored, the days waiting are
stored as one batch: Dagster's batch of events, which the instance hands its storage whole when
DAGSTER_EVENT_BATCH_SIZE is set (PostgreSQL's writes it as one INSERT, the project's SQLite
storage in one transaction). Without the setting each event is stored alone, as before.

Every event of a batch is built, and so logged, before the first is yielded, and the last one
ends the batch: the instance never holds a part of a batch that nothing will close. A run killed
while its batch is being stored leaves those days' files written and unrecorded, which
reconciliation_sensor records (raw/unrecorded.py).
"""

from collections.abc import Sequence

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, generate_event_batch_id

# The most days one write records: progress shows at least this often.
MAX_BATCH_DAYS = 100
# The instance setting that makes it store a batch whole (events it buffers at most), as
# `make run`, `make backfill`, `make dev` and the production configs set it.
BATCHED_INSTANCE = {"DAGSTER_EVENT_BATCH_SIZE": "1000"}


def recorded_together(
    context: dg.AssetExecutionContext, materializations: Sequence[dg.AssetMaterialization]
) -> list[dg.AssetMaterialization | DagsterEvent]:
    """What the body yields to record `materializations`: themselves if there is one, else their
    events, in batches of at most MAX_BATCH_DAYS, each logged (and stored) by the time it is
    returned."""
    if len(materializations) < 2:
        return list(materializations)
    step = context.get_step_execution_context()
    events: list[dg.AssetMaterialization | DagsterEvent] = []
    for start in range(0, len(materializations), MAX_BATCH_DAYS):
        batch = materializations[start : start + MAX_BATCH_DAYS]
        batch_id = generate_event_batch_id()
        events += [
            DagsterEvent.asset_materialization(
                step, day, DagsterEventBatchMetadata(batch_id, i == len(batch) - 1)
            )
            for i, day in enumerate(batch)
        ]
    return events
