"""`python -m nyc_collisions_dagster.cli run|backfill`: what `make run` and `make backfill` do.

Each lands its days as one ordinary Dagster run in DAGSTER_HOME, as `dagster asset materialize`
does, prints how far it has come and a summary, and keeps Dagster's own log in a file. A mistake
in the arguments or a failed run ends with one sentence naming the cause and the setting to fix,
and a non-zero exit status; `--verbose` shows Dagster's log live instead.
"""

import argparse
import sys
import time
from datetime import timedelta

from nyc_collisions_dagster.cli.arguments import (
    FIRST_DAY,
    Days,
    UsageError,
    last_day,
    last_month,
    parse_day,
    parse_month,
    parse_range,
)
from nyc_collisions_dagster.cli.launch import Launch
from nyc_collisions_dagster.cli.session import (
    RunFailed,
    Session,
    home,
    names_text,
    print_landed,
    source,
)
from nyc_collisions_dagster.constants import DATASETS, PROCESSED_PREFIX
from nyc_collisions_dagster.lake import query

RAW_ASSETS = tuple(DATASETS)
# Crashes, injured and KSI by borough: what `make run` shows of the month it processed.
BOROUGH_QUERY = (
    "SELECT crash_borough, count(*) AS crashes, sum(number_of_persons_injured) AS injured, "
    "sum(ksi) AS ksi FROM crashes WHERE year = {year} AND month = {month} GROUP BY ALL "
    "ORDER BY 2 DESC"
)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        session = Session(home(), args.command, args.verbose)
        if args.command == "backfill":
            days = parse_range(args.start or str(FIRST_DAY), args.end or str(last_day()))
            _land_raw(session, days, _assets(args.assets), planned_subsets=True)
        elif args.partition:
            day = parse_day("PARTITION", args.partition)
            _land_raw(session, Days(day, day), RAW_ASSETS)
        else:
            _run_month(session, parse_month(args.month or last_month()))
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped: the days recorded so far are kept; run the same command again to land "
              "the rest.", file=sys.stderr)  # fmt: skip
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nyc_collisions_dagster.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="land a month raw and processed, or one raw day")
    run.add_argument("--month", help="YYYY-MM (default: the last complete month)")
    run.add_argument("--partition", help="YYYY-MM-DD: land this raw day only")
    backfill = commands.add_parser("backfill", help="the mass upload: the raw days FROM..TO")
    backfill.add_argument("--from", dest="start", help="YYYY-MM-DD (default: the first day)")
    backfill.add_argument("--to", dest="end", help="YYYY-MM-DD (default: the last complete day)")
    backfill.add_argument("--assets", default=",".join(RAW_ASSETS), help="e.g. crashes,persons")
    for command in (run, backfill):
        command.add_argument("--verbose", action="store_true", help="show Dagster's log live")
    return parser


def _assets(text: str) -> tuple[str, ...]:
    assets = tuple(name.strip() for name in text.split(",") if name.strip())
    if unknown := [name for name in assets if name not in DATASETS] or not assets:
        raise UsageError(
            f"ASSETS={text} names no raw asset{f' ({unknown})' if unknown else ''}: "
            f"give some of {','.join(RAW_ASSETS)}."
        )
    return assets


def _land_raw(
    session: Session, days: Days, assets: tuple[str, ...], planned_subsets: bool = False
) -> None:
    what = (
        f"{days.first}" if days.count == 1 else f"{days.first} to {days.last} ({days.count} days)"
    )
    session.fail_orphans()
    session.say(f"Landing {names_text(assets)} for {what} from {source()}.")
    if not session.verbose:
        session.say(f"Dagster's log: {session.log_path}")
    started = time.monotonic()
    if days.count == 1:
        launch = Launch(assets, partition=str(days.first))
    else:
        # The mass upload's setting (docs/operations.md#mass-upload): Dagster plans the run with
        # one event per asset instead of one per day and asset.
        env = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"} if planned_subsets else {}
        launch = Launch(assets, partition_range=(str(days.first), str(days.last)), env=env)
    landed = session.land(launch, days.count, "days")
    print_landed(session, landed, "days", timedelta(seconds=time.monotonic() - started))


def _run_month(session: Session, days: Days) -> None:
    assert days.month is not None
    _land_raw(session, days, RAW_ASSETS)
    processed = tuple(f"{PROCESSED_PREFIX}/{name}" for name in RAW_ASSETS)
    session.say(f"Processing {days.month}.")
    started = time.monotonic()
    landed = session.land(Launch(processed, partition=days.month), 1, "month")
    print_landed(session, landed, "month", timedelta(seconds=time.monotonic() - started))
    session.say("Summarizing the whole history, then drawing the dashboard.")
    started = time.monotonic()
    landed = session.land(Launch((f"{PROCESSED_PREFIX}/summary", "reports/dashboard")), 1, "file")
    print_landed(session, landed, "file", timedelta(seconds=time.monotonic() - started))
    year, month = days.month.split("-")
    session.say(f"Crashes, injured and KSI by crash_borough, {days.month}:")
    if query.main([BOROUGH_QUERY.format(year=int(year), month=int(month))]) != 0:
        raise RunFailed("The month landed, but the lake could not be queried: see above.")


if __name__ == "__main__":
    sys.exit(main())
