"""A run slow enough to be watched or killed: one asset that yields a materialization per day, as
the raw assets do, pausing DAY_SECONDS between days and printing each day once it is recorded."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

DAYS = [f"2024-01-{day:02d}" for day in range(1, 31)]
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
