"""Runs recorded as started whose process is gone: killed, taken by the OOM killer, or on a
laptop that was shut.

Dagster notices such a run only through run monitoring, in the daemon, and only for runs that a
run launcher started. A run of `dagster asset materialize` (or `make backfill`) killed with
SIGKILL stays STARTED for good, and the pool slots its steps held stay taken: with the sample
instance's limit of 4, two killed ranges hold back every later run's steps, for ever.
`fail_orphans` finds them by the process id the executor records when it starts, marks them
failed and frees their slots; their recorded days stay recorded.

Only on an instance whose runs are in SQLite: its runs are this machine's. On PostgreSQL another
machine may run a run, whose process this one cannot see; there, run monitoring does this.
"""

from dataclasses import dataclass

import dagster as dg
import psutil
from dagster._core.storage.runs import SqliteRunStorage

# A process started this long after the executor recorded its pid is another process: the pid
# was reused.
_CLOCK_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class Orphan:
    """A run whose process died: what was done about it."""

    run_id: str
    pid: int
    freed_slots: int

    @property
    def message(self) -> str:
        freed = f" and freed its {self.freed_slots} pool slots" if self.freed_slots else ""
        return (
            f"Run {self.run_id} died mid-way (its process {self.pid} is gone): marked it "
            f"failed{freed}. The days it recorded are kept."
        )


def fail_orphans(instance: dg.DagsterInstance) -> list[Orphan]:
    """Mark failed every STARTED run whose executor's process is gone, freeing its pool slots."""
    if not isinstance(instance.run_storage, SqliteRunStorage):
        return []
    orphans = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        started = _executor_process(instance, run.run_id)
        if started is None or _alive(*started):
            continue
        pid = started[0]
        instance.report_run_failed(
            run, f"The run's process ({pid}) is gone: it was killed, or its machine stopped."
        )
        orphans.append(Orphan(run.run_id, pid, _free_slots(instance, run.run_id)))
    return orphans


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> int:
    """Free the pool slots the run's steps hold; how many there were."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return 0
    pools = storage.get_concurrency_infos(list(storage.get_concurrency_keys())).values()
    held = sum(slot.run_id == run_id for pool in pools for slot in pool.claimed_slots)
    storage.free_concurrency_slots_for_run(run_id)
    return held


def _executor_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process executing the run's steps, and when it said so; None before the
    executor starts (the run may be about to)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    for record in records.records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key is not None:
            continue  # a step's own process, a child of the executor's
        pid = event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(str(pid.value)), record.event_log_entry.timestamp
    return None


def _alive(pid: int, since: float) -> bool:
    try:
        process = psutil.Process(pid)
        reused = process.create_time() > since + _CLOCK_SLACK_SECONDS
        return not reused and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's process: not ours to judge
