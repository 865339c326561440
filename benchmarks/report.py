"""The mass-upload benchmark's figures and its Markdown report: runs, then targets of issues 3
and 11."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One measured run. `requests` is what the server was asked, as counted by the client or
    recorded in the run's materialization metadata."""

    wall: float
    rows: int
    requests: int | None
    rss_mb: float
    check: str


@dataclass(frozen=True)
class Target:
    figure: str
    value: float | None
    op: str  # "≤" or "≥"
    limit: float

    @property
    def mark(self) -> str:
        if self.value is None:
            return "n/a"
        passed = self.value <= self.limit if self.op == "≤" else self.value >= self.limit
        return "PASS" if passed else "FAIL"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


# The dlt runs of mass_upload.plan, the peers of issue 11, and the project's runs compared with
# them: its defaults, and the README's mass-upload command (`make backfill`).
DLT_RUNS = ("dlt", "dlt_arrow")
PROJECT_RUNS = {"project": "project", "subset": "project as make backfill"}


def _getter(results: Mapping[str, Result | None]) -> Callable[[str, str], float | None]:
    def get(key: str, attr: str) -> float | None:
        result = results.get(key)
        return None if result is None else getattr(result, attr)

    return get


def _threaded_target(results: Mapping[str, Result | None], project: str = "project") -> Target:
    get = _getter(results)
    return Target(
        f"original multithreaded wall ÷ {PROJECT_RUNS[project]} wall",
        _ratio(get("threaded", "wall"), get(project, "wall")),
        "≥",
        1.25,
    )


def targets(results: Mapping[str, Result | None], long_months: int) -> list[Target]:
    """Issue 3's targets from the runs keyed as in mass_upload.plan; a missing run gives n/a."""
    get = _getter(results)
    wire, floor = get("wire", "wall"), get("floor", "wall")
    rows = get("project", "rows")
    return [
        Target(
            "project wall ÷ (wire floor + Dagster floor)",
            _ratio(get("project", "wall"), None if None in (wire, floor) else wire + floor),
            "≤",
            1.2,
        ),
        _threaded_target(results),
        Target(
            f"project peak RSS, {long_months}-month range ÷ 1-month range",
            _ratio(get("long", "rss_mb"), get("month", "rss_mb")),
            "≤",
            1.3,
        ),
        Target(
            "project peak RSS ÷ original multithreaded peak RSS",
            _ratio(get("project", "rss_mb"), get("threaded", "rss_mb")),
            "≤",
            0.5,
        ),
        Target(
            "requests per million rows (project)",
            _ratio(get("project", "requests"), rows / 1e6 if rows else None),
            "≤",
            30,
        ),
        Target(
            "one-partition project run ÷ one-partition Dagster floor",
            _ratio(get("one", "wall"), get("floor_one", "wall")),
            "≤",
            1.5,
        ),
    ]


def peer_targets(results: Mapping[str, Result | None], with_threaded: bool) -> list[Target]:
    """Issue 11's targets for each project run measured: against dlt's fastest run and its
    smallest peak RSS, whichever runs those are, and against the original multithreaded method
    (unless targets() gave it already, for the defaults)."""
    get = _getter(results)
    walls = [w for key in DLT_RUNS if (w := get(key, "wall")) is not None]
    rss = [m for key in DLT_RUNS if (m := get(key, "rss_mb")) is not None]
    goals = []
    for key, name in PROJECT_RUNS.items():
        if results.get(key) is None:
            continue
        goals += [
            Target(
                f"{name} wall ÷ best dlt wall",
                _ratio(get(key, "wall"), min(walls, default=None)),
                "≤",
                0.8,
            ),
            Target(
                f"{name} peak RSS ÷ smallest dlt peak RSS",
                _ratio(get(key, "rss_mb"), min(rss, default=None)),
                "≤",
                0.8,
            ),
        ]
        if with_threaded or key != "project":
            goals.append(_threaded_target(results, key))
    return goals


def bookkeeping_targets(results: Mapping[str, Result | None]) -> list[Target]:
    """Issue 35's: the pooled event log against the original method and dlt's rest_api, and the
    memory it costs against Dagster's stock event log."""
    get = _getter(results)
    goals = [
        Target(
            f"original multithreaded wall ÷ {PROJECT_RUNS[key]} wall",
            _ratio(get("threaded", "wall"), get(key, "wall")),
            "≥",
            2.5,
        )
        for key in PROJECT_RUNS
    ]
    goals += [
        Target(
            f"{PROJECT_RUNS[key]} wall ÷ dlt rest_api wall",
            _ratio(get(key, "wall"), get("dlt", "wall")),
            "≤",
            0.5,
        )
        for key in PROJECT_RUNS
    ]
    goals.append(
        Target(
            "project peak RSS ÷ the same on Dagster's stock event log",
            _ratio(get("project", "rss_mb"), get("stock", "rss_mb")),
            "≤",
            1.1,
        )
    )
    return goals


def dlt_notes(results: Mapping[str, Result | None], labels: Mapping[str, str]) -> list[str]:
    """The project against each dlt run on its own, beside the targets' best of them."""
    return [
        f"{labels[mine]} ÷ {labels[key]}: wall {project.wall / r.wall:.2f}, peak RSS "
        f"{project.rss_mb / r.rss_mb:.2f}."
        for mine in PROJECT_RUNS
        if (project := results.get(mine)) is not None
        for key in DLT_RUNS
        if (r := results.get(key)) is not None
    ]


def markdown(
    title: str,
    context: list[str],
    labels: Mapping[str, str],
    results: Mapping[str, Result | None],
    goals: list[Target],
    notes: list[str],
) -> str:
    lines = [
        f"## {title}",
        "",
        *context,
        "",
        "| run | rows | wall s | rows/s | requests | peak RSS MB | check |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for key, label in labels.items():
        r = results.get(key)
        if r is None:
            lines.append(f"| {label} | | | | | | failed |")
            continue
        requests = "" if r.requests is None else f"{r.requests:,}"
        lines.append(
            f"| {label} | {r.rows:,} | {r.wall:.1f} | {r.rows / r.wall:,.0f} | "
            f"{requests} | {r.rss_mb:,.0f} | {r.check} |"
        )
    lines += ["", "| figure | value | target | |", "|---|--:|--:|---|"]
    for goal in goals:
        value = "n/a" if goal.value is None else f"{goal.value:.2f}"
        lines.append(f"| {goal.figure} | {value} | {goal.op} {goal.limit:g} | {goal.mark} |")
    return "\n".join([*lines, "", *notes])
