"""Where a run's time went, read back from its event log: the planning before it starts, then per
step when it started, how long it worked until its first materialization, recorded its
materializations, and worked after the last (its checks)."""

from pathlib import Path

import dagster as dg

from nyc_collisions_dagster.constants import DATASETS

_STEP_EVENTS = {
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}

_ORDER = {name: i for i, name in enumerate(DATASETS)}
PLANNING = "planning the run (before it starts)"
RUN = "the run, from start to end"
Phases = dict[str, float]  # phase → seconds, in the order they happen


def phases(home: Path) -> Phases:
    """The phases of the one run in a DAGSTER_HOME."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.get_run_records(limit=1)
        created = record.create_timestamp.timestamp()
        events = [
            r.event_log_entry
            for r in instance.get_records_for_run(
                record.dagster_run.run_id, of_type=_STEP_EVENTS, limit=1_000_000
            ).records
        ]
    when: dict[tuple[str | None, dg.DagsterEventType], list[float]] = {}
    for event in events:
        when.setdefault((event.step_key, event.dagster_event_type), []).append(event.timestamp)
    started = when[(None, dg.DagsterEventType.RUN_START)][0]
    found = {PLANNING: started - created}
    # The datasets' steps in their usual order, then the others as they started.
    steps = sorted(
        {key for key, kind in when if kind == dg.DagsterEventType.STEP_START},
        key=lambda step: (
            _ORDER.get(step, len(_ORDER)),
            when[(step, dg.DagsterEventType.STEP_START)][0],
        ),
    )
    for step in steps:
        begin = when[(step, dg.DagsterEventType.STEP_START)][0]
        end = when.get((step, dg.DagsterEventType.STEP_SUCCESS), [begin])[0]
        found[f"{step}: started, after the run's start"] = begin - started
        recorded = when.get((step, dg.DagsterEventType.ASSET_MATERIALIZATION))
        if recorded:
            found[f"{step}: until its first materialization"] = recorded[0] - begin
            found[f"{step}: first to last materialization"] = recorded[-1] - recorded[0]
            found[f"{step}: after the last (checks)"] = end - recorded[-1]
        else:
            found[f"{step}: working"] = end - begin
    finished = when.get((None, dg.DagsterEventType.RUN_SUCCESS), [started])[0]
    found[RUN] = finished - started
    return found
