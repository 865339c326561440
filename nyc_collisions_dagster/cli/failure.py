"""Why a run failed, in the project's own words: the sentences its errors end their chains with.

Dagster wraps a step's error in its own (`Error occurred while executing op ...`); the project's
errors below that say which days failed and, at the bottom of the chain, the cause and the
setting to check.
"""

from dataclasses import dataclass
from typing import Protocol

import dagster as dg

_FAILURES = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}


class _ErrorInfo(Protocol):
    """What Dagster keeps of an exception: its class name, message and cause."""

    cls_name: str
    message: str
    cause: "_ErrorInfo | None"


@dataclass(frozen=True)
class Failure:
    """One failed step (or the run, before any step): what it left undone, and the cause."""

    step: str | None
    outcome: str | None
    cause: str


def failures(instance: dg.DagsterInstance, run_id: str) -> list[Failure]:
    """The run's failed steps in the order they failed; the run's own failure when no step did."""
    found: list[Failure] = []
    records = instance.get_records_for_run(run_id, of_type=_FAILURES).records
    for record in records:
        event = record.event_log_entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        if event is None or error is None:
            continue
        if event.is_run_failure and found:
            continue  # the run's failure repeats its first step's
        chain = _chain(error)
        own = [e for e in chain if not e.cls_name.startswith("Dagster")] or chain
        outcome = _text(own[0]) if len(own) > 1 else None
        found.append(Failure(event.step_key, outcome, _text(chain[-1])))
    return found


def causes(found: list[Failure]) -> list[str]:
    """The distinct causes, the most frequent last, so that the last line names it."""
    counts: dict[str, int] = {}
    for failure in found:
        counts[failure.cause] = counts.get(failure.cause, 0) + 1
    return sorted(counts, key=lambda cause: counts[cause])


def _chain(error: _ErrorInfo) -> list[_ErrorInfo]:
    chain = [error]
    while chain[-1].cause is not None:
        chain.append(chain[-1].cause)
    return chain


def _text(error: _ErrorInfo) -> str:
    """The message without the `package.module.Class: ` that Python's formatting puts first."""
    message = error.message.strip()
    head, sep, rest = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        message = rest
    return " ".join(message.split())
