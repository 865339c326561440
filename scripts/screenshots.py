"""Take the README's screenshots of the Dagster UI: the asset graph and a finished backfill.

Starts `dagster dev` against the SODA test server (generated rows) and a temporary local lake,
launches a backfill of 2024-01-01..05 of the three assets the way the UI does, waits for it, and
has headless Chromium render the pages to docs/asset_graph.png and docs/backfill.png.

Needs the dev extras and Debian's Chromium (`apt-get install chromium`). Not run in CI:

    python -m scripts.screenshots [--out docs]     # from the repository root
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import yaml

from nyc_collisions_dagster.constants import DATASETS, RAW_GROUP_NAME
from nyc_collisions_dagster_tests.generator import generate
from nyc_collisions_dagster_tests.soda_server import SodaServer
from nyc_collisions_dagster_tests.test_webserver import (
    BACKFILL,
    FINISHED,
    LAUNCH_BACKFILL,
    TEST_INSTANCE_CONFIG,
    WORKSPACE,
    DagsterDev,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DAYS = [(date(2024, 1, 1) + timedelta(days=i)).isoformat() for i in range(5)]
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def launch_backfill(dev: DagsterDev, timeout: float = 180) -> str:
    """Launch the backfill as the UI's "Launch backfill" does; return its id once it succeeded."""
    params = {"assetSelection": [{"path": [name]} for name in DATASETS], "partitionNames": DAYS}
    launched = dev.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {launched}")
    backfill_id = launched["backfillId"]
    deadline = time.monotonic() + timeout
    while (status := dev.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
           .get("status")) not in FINISHED:
        if time.monotonic() > deadline:
            raise RuntimeError(f"backfill {backfill_id} still {status} after {timeout} s")
        time.sleep(1)
    if status != "COMPLETED_SUCCESS":
        raise RuntimeError(f"backfill {backfill_id} ended {status}:\n{dev.log_tail()}")
    return backfill_id


def screenshot(url: str, out: Path, workdir: Path, height: int) -> None:
    """Render `url` 1600 px wide with headless Chromium; virtual time lets the UI's JavaScript
    load its data and draw."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("Chromium not found: apt-get install chromium")
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))
    subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size=1600,{height}",
         "--virtual-time-budget=20000", f"--screenshot={out}", url],
        check=True, capture_output=True, timeout=180,
    )
    print(f"{out}: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = generate(date(2024, 1, 1), date(2024, 1, 11))
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp, SodaServer(rows) as server:
        work = Path(tmp)
        home = work / "dagster_home"
        home.mkdir()
        # The test instance, without the new-user pop-up (`nux`) that could cover the pages.
        config = {**TEST_INSTANCE_CONFIG, "nux": {"enabled": False}}
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "SOCRATA_DOMAIN": server.url,
            "COLLISIONS_STORAGE_URL": str(work / "collisions_raw_data"),
            "DAGSTER_HOME": str(home),
        }
        dev = DagsterDev(env, work / "dagster_dev.log")
        try:
            dev.wait_until_loaded(timeout=120)
            [location] = dev.graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]
            backfill_id = launch_backfill(dev)
            screenshot(f"{dev.url}/locations/{location['name']}/asset-groups/{RAW_GROUP_NAME}",
                       args.out / "asset_graph.png", work, height=1000)
            # The backfill's overview: each asset's partitions targeted, succeeded and failed.
            screenshot(f"{dev.url}/runs/b/{backfill_id}", args.out / "backfill.png", work,
                       height=520)
        finally:
            dev.stop()


if __name__ == "__main__":
    main()
