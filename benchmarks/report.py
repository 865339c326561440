"""The mass-upload benchmark's figures and its Markdown report: runs, then targets of issue 3."""

from collections.abc import Mapping
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


def targets(results: Mapping[str, Result | None], long_months: int) -> list[Target]:
    """The issue's targets from the runs keyed as in mass_upload.plan; a missing run gives n/a."""

    def get(key: str, attr: str) -> float | None:
        result = results.get(key)
        return None if result is None else getattr(result, attr)

    wire, floor = get("wire", "wall"), get("floor", "wall")
    rows = get("project", "rows")
    return [
        Target("project wall ÷ (wire floor + Dagster floor)",
               _ratio(get("project", "wall"), None if None in (wire, floor) else wire + floor),
               "≤", 1.2),
        Target("original multithreaded wall ÷ project wall",
               _ratio(get("threaded", "wall"), get("project", "wall")), "≥", 1.25),
        Target(f"project peak RSS, {long_months}-month range ÷ 1-month range",
               _ratio(get("long", "rss_mb"), get("month", "rss_mb")), "≤", 1.3),
        Target("project peak RSS ÷ original multithreaded peak RSS",
               _ratio(get("project", "rss_mb"), get("threaded", "rss_mb")), "≤", 0.5),
        Target("requests per million rows (project)",
               _ratio(get("project", "requests"), rows / 1e6 if rows else None), "≤", 30),
        Target("one-partition project run ÷ one-partition Dagster floor",
               _ratio(get("one", "wall"), get("floor_one", "wall")), "≤", 1.5),
    ]


def markdown(title: str, context: list[str], labels: Mapping[str, str],
             results: Mapping[str, Result | None], goals: list[Target], notes: list[str]) -> str:
    lines = [f"## {title}", "", *context, "",
             "| run | rows | wall s | rows/s | requests | peak RSS MB | check |",
             "|---|--:|--:|--:|--:|--:|---|"]
    for key, label in labels.items():
        r = results.get(key)
        if r is None:
            lines.append(f"| {label} | | | | | | failed |")
            continue
        requests = "" if r.requests is None else f"{r.requests:,}"
        lines.append(f"| {label} | {r.rows:,} | {r.wall:.1f} | {r.rows / r.wall:,.0f} | "
                     f"{requests} | {r.rss_mb:,.0f} | {r.check} |")
    lines += ["", "| figure | value | target | |", "|---|--:|--:|---|"]
    for goal in goals:
        value = "n/a" if goal.value is None else f"{goal.value:.2f}"
        lines.append(f"| {goal.figure} | {value} | {goal.op} {goal.limit:g} | {goal.mark} |")
    return "\n".join([*lines, "", *notes])
