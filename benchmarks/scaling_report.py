"""The scaling benchmark's figures and its Markdown report: the curve, the issue's targets for its
longest point, and Dagster's share of the time on SQLite and on PostgreSQL."""

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from benchmarks import harness, instances, timeline
from benchmarks.report import Result, Target
from benchmarks.spot_checks import SpotChecks
from benchmarks.timeline import Phases
from nyc_collisions_dagster.constants import DATASETS

if TYPE_CHECKING:
    from scaling import Point

STORAGES = ("sqlite", "postgres")
BATCH = 1_000  # DAGSTER_EVENT_BATCH_SIZE when on: events stored per batch
SUBSET = instances.Settings(subset=True)
BATCHED = instances.Settings(batch=BATCH)
BOTH = instances.Settings(subset=True, batch=BATCH)
FLOOR_VARIANTS = [instances.DEFAULTS, SUBSET, BATCHED, BOTH]
# The project with what each storage can use: SQLite stores a batch one event at a time, so
# batches cannot help it.
PROJECT_VARIANTS = {
    "sqlite": [instances.DEFAULTS, SUBSET],
    "postgres": [instances.DEFAULTS, BATCHED, BOTH],
}
RSS_LIMIT_MB = 1024


@dataclass(frozen=True)
class Timed(Result):
    """A Dagster run: where its time went, and for the project's the spot checks of what it
    landed."""

    spots: SpotChecks | None = None
    phases: Phases | None = None


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON line a measured child prints last."""
    return json.loads(stdout.splitlines()[-1])


def volumes(domain: str, curve: list["Point"]) -> dict[str, dict[str, int]]:
    """Rows each point holds, per dataset, as the server counts them."""
    return {
        p.label: {
            name: harness.source_rows(domain, p.start, p.end, d.dataset_id)
            for name, d in DATASETS.items()
        }
        for p in curve
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


Results = Mapping[str, Result | None]


def _get(results: Results, key: str, attr: str) -> Any:
    result = results.get(key)
    return None if result is None else getattr(result, attr)


def _floors(results: Results, point: str) -> float | None:
    wire, floor = _get(results, f"wire {point}", "wall"), _get(results, f"floor {point}", "wall")
    return None if wire is None or floor is None else wire + floor


def _seconds(results: Results, key: str) -> str:
    """A run's wall time; blank when it was not planned, "failed" when it failed."""
    if key not in results:
        return ""
    result = results[key]
    return "failed" if result is None else f"{result.wall:.1f}"


def _figure(value: float | None, form: str = ".2f") -> str:
    return "n/a" if value is None else format(value, form)


def _spots(result: Result | None, form: str) -> str:
    spots = result.spots if isinstance(result, Timed) else None
    return "" if spots is None else getattr(spots, form)


def curve_table(curve: list["Point"], results: Results) -> list[str]:
    lines = [
        "| point | days | partitions | rows | wall s | rows/s | peak RSS MB | requests | "
        "Dagster floor s | wire floor s | wall ÷ (wire + floor) | check | spot checks |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for p in curve:
        r = results.get(f"project {p.label}")
        cells = [p.label, f"{p.days:,}", f"{p.partitions:,}"]
        cells += (
            ["", "", "", "", ""]
            if r is None
            else [
                f"{r.rows:,}",
                f"{r.wall:.1f}",
                f"{r.rows / r.wall:,.0f}",
                f"{r.rss_mb:,.0f}",
                _figure(r.requests, ","),
            ]
        )
        both = ratio(None if r is None else r.wall, _floors(results, p.label))
        cells += [
            _seconds(results, f"floor {p.label}"),
            _seconds(results, f"wire {p.label}"),
            _figure(both),
            "failed" if r is None else r.check,
            _spots(r, "summary"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def growth_table(curve: list["Point"], results: Results) -> list[str]:
    """What each step of the curve added, per partition added: flat columns are linear growth."""
    lines = [
        "| from → to | partitions added | project ms / partition | Dagster floor ms / "
        "partition | wire floor ms / partition | project peak RSS MB added |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for before, after in zip(curve, curve[1:]):
        added = after.partitions - before.partitions
        cells = []
        for kind in ("project", "floor", "wire"):
            a, b = (_get(results, f"{kind} {p.label}", "wall") for p in (after, before))
            cells.append("n/a" if a is None or b is None else f"{1000 * (a - b) / added:.1f}")
        a, b = (_get(results, f"project {p.label}", "rss_mb") for p in (after, before))
        cells.append("n/a" if a is None or b is None else f"{a - b:+,.0f}")
        lines.append(f"| {before.label} → {after.label} | {added:,} | " + " | ".join(cells) + " |")
    return lines


def phase_table(curve: list["Point"], results: Results) -> list[str]:
    """Where each point's project run spent its time, read from its event log."""
    runs = {
        p.label: r.phases
        for p in curve
        if isinstance(r := results.get(f"project {p.label}"), Timed) and r.phases
    }
    names = list(dict.fromkeys(name for found in runs.values() for name in found))
    lines = ["| seconds | " + " | ".join(runs) + " |", "|---|" + "--:|" * len(runs)]
    for name in names:
        cells = [_figure(found.get(name), ".1f") for found in runs.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def curve_targets(curve: list["Point"], results: Results) -> list[Target]:
    """The issue's targets for the full history, measured on the longest point run."""
    longest, year = curve[-1].label, curve[1].label
    landed = results.get(f"project {longest}")
    spots = landed.spots if isinstance(landed, Timed) else None
    wrong = None if spots is None else len(spots.wrong)
    return [
        Target(f"{longest}: spot-checked partitions that differ from the source", wrong, "≤", 0),
        Target(
            f"{longest}: project peak RSS, MB",
            _get(results, f"project {longest}", "rss_mb"),
            "≤",
            RSS_LIMIT_MB,
        ),
        Target(
            f"{longest}: project peak RSS ÷ the {year} point's",
            ratio(
                _get(results, f"project {longest}", "rss_mb"),
                _get(results, f"project {year}", "rss_mb"),
            ),
            "≤",
            1.3,
        ),
        Target(
            f"{longest}: project wall ÷ (wire floor + Dagster floor)",
            ratio(_get(results, f"project {longest}", "wall"), _floors(results, longest)),
            "≤",
            1.25,
        ),
    ]


def target_table(goals: list[Target]) -> list[str]:
    lines = ["| target | value | limit | |", "|---|--:|--:|---|"]
    for goal in goals:
        lines.append(
            f"| {goal.figure} | {_figure(goal.value, ',.2f')} | {goal.op} "
            f"{goal.limit:g} | {goal.mark} |"
        )
    return lines


def share_table(point: "Point", results: Results) -> list[str]:
    """Per storage and settings: the floor over one day and over the point, Dagster's cost per
    partition from the two, and the project over the point where it was run so."""
    lines = [
        f"| storage | settings | floor, 1 day s | floor, {point.label} s | of which "
        "planning / run s | ms per partition | "
        f"project, {point.label} s | project ÷ (wire + floor) | project check, spot checks |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    wire = _get(results, f"wire {point.label}", "wall")
    for storage in STORAGES:
        one = _get(results, f"floor1 {storage}", "wall")
        for settings in FLOOR_VARIANTS:
            floor_key = share_key("floor", storage, settings, point)
            project_key = share_key("project", storage, settings, point)
            floor = _get(results, floor_key, "wall")
            project = results.get(project_key)
            per = (
                None
                if floor is None or one is None
                else 1000 * (floor - one) / (point.partitions - len(DATASETS))
            )
            both = (
                None
                if project is None or floor is None or wire is None
                else (project.wall / (wire + floor))
            )
            cells = [
                storage,
                settings.label,
                _seconds(results, f"floor1 {storage}"),
                _seconds(results, floor_key),
                _parts(results.get(floor_key)),
                _figure(per, ".1f"),
                _seconds(results, project_key),
                "" if both is None else f"{both:.2f}",
                "" if project is None else f"{project.check}, {_spots(project, 'counts')}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _parts(result: Result | None) -> str:
    """The planning before a run and the run itself, from its event log."""
    phases = result.phases if isinstance(result, Timed) else None
    if not phases:
        return ""
    return f"{phases[timeline.PLANNING]:.1f} / {phases[timeline.RUN]:.1f}"


def share_key(kind: str, storage: str, settings: instances.Settings, point: "Point") -> str:
    """The key of a run of the share; the curve's own runs stand for SQLite with defaults."""
    if storage == "sqlite" and settings == instances.DEFAULTS:
        return f"{kind} {point.label}"
    return f"{kind} {storage} {settings.label}"


def markdown(
    args: argparse.Namespace,
    curve: list["Point"],
    share_point: "Point",
    results: Results,
    rows: dict[str, dict[str, int]],
    seconds: float,
) -> str:
    longest = curve[-1]
    flags = "".join(f" --{name}" for name in ("full", "quick", "share") if getattr(args, name))
    per_day = ", ".join(
        f"{name} {n:,} ({n / longest.days:,.0f} a day)" for name, n in rows[longest.label].items()
    )
    lines = [
        "## Scaling benchmark",
        "",
        f"Points end on {longest.end - timedelta(days=1)}, the newest partition. "
        f"{longest.label} ({longest.start} on): {per_day}. Test server: 0.5 s per request, "
        "50 µs per row, at most 8 requests at once; moto S3. Machine: "
        f"{os.cpu_count()} cores. `python -m benchmarks scale{flags}`, {seconds / 60:.0f} "
        "min in all.",
        "",
        "Wall times include each command's start-up; peak RSS is each run's largest process; "
        "requests are read from the runs' metadata; a partition is one day of one dataset.",
    ]
    lines += [
        "",
        *curve_table(curve, results),
        "",
        *growth_table(curve, results),
        "",
        "Where the project's time went (from each run's event log):",
        "",
        *phase_table(curve, results),
        "",
        *target_table(curve_targets(curve, results)),
    ]
    if args.share:
        lines += [
            "",
            f"Dagster's share over {share_point.label} ({share_point.partitions:,} "
            "partitions); ms per partition = (floor over the range − floor over one day) "
            "÷ the partitions added; event batches of "
            f"{BATCH:,} where on.",
            "",
            *share_table(share_point, results),
        ]
    return "\n".join(lines)
