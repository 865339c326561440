"""Take the README's screenshots of the Dagster UI: the lineage, a backfill and the monthly plots.

Starts `dagster dev` against the SODA test server (generated rows) and a temporary local lake,
and launches one backfill of the three raw assets, the way the UI does, over every day of the
months the UI plots (the latest 120 monthly partitions, less the current, incomplete month).
No processed backfill is launched: `processed_automation_sensor` requests the processed months
by itself, as under `make dev`, each once its raw days have landed; its runs wait for the raw
run (one backfill run at a time, the sample instance's limit) and the script for the last of
them. Headless Chromium then renders docs/asset_graph.png (the lineage of both groups),
docs/backfill.png (the raw backfill) and docs/processed_plots.png (processed/crashes' metadata,
plotted per month).

Ten years of raw days make it slow: 10 to 17 minutes on two shared cores, most of it Dagster
planning the 3,600-day backfill and the run landing it. Fewer years would leave most of each
plot empty. Needs the dev extras and Debian's Chromium (`apt-get install chromium`). Not run
in CI:

    python -m scripts.screenshots [--out docs]     # from the repository root
"""

import argparse
import base64
import fcntl
import json
import math
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from nyc_collisions_dagster.constants import (
    DATASETS,
    PROCESSED_GROUP_NAME,
    PROCESSED_PREFIX,
    RAW_GROUP_NAME,
)
from nyc_collisions_dagster.partitions import monthly_partitions
from nyc_collisions_dagster_tests.soda_fake.generator import Row, generate
from nyc_collisions_dagster_tests.soda_fake.server import SodaServer
from nyc_collisions_dagster_tests.system.test_webserver import (
    SAMPLE_INSTANCE_CONFIG,
    TEST_INSTANCE_CONFIG,
    DagsterDev,
)
from nyc_collisions_dagster_tests.ui_api import FINISHED

REPO_ROOT = Path(__file__).resolve().parents[1]
# The UI plots an asset's latest 120 partitions (the current month among them) whether they
# are materialized or not: landing all of them but the current one fills the plots' width.
PLOTTED_PARTITIONS = 120
PROCESSED_ASSETS = [[PROCESSED_PREFIX, name] for name in DATASETS]
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# How long the UI's JavaScript may load its data and draw, after the page loads and after each
# step: page time, as with Chromium's --virtual-time-budget. It stands still while requests are
# pending, so a slow GraphQL answer cannot cut a page short, and races ahead when none are.
SETTLE_MS = 20_000
# The asset page's metadata section shows a table until its "Plots" button is pressed, and
# the UI keeps that choice nowhere a URL could set it.
CLICK_PLOTS = """
const plots = [...document.querySelectorAll("button")].find(b => b.textContent.trim() === "Plots");
if (!plots) throw new Error("no Plots button on the page");
plots.click();
"""
# Fails rather than saving a spinner or an empty state (a month carries at least four numbers:
# row count, crashes, persons injured and killed), then puts the section at the top of the page.
SHOW_PLOTS = """
const drawn = document.querySelectorAll("canvas").length;
if (drawn < 4) throw new Error(`only ${drawn} plots drawn`);
const heading = [...document.querySelectorAll("span, div")]
  .find(e => e.childElementCount === 0 && e.textContent.trim() === "Metadata");
if (!heading) throw new Error("no Metadata heading on the page");
heading.scrollIntoView({block: "start"});
"""


class Months:
    """The months to land, all complete: the plotted window but its current month."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self.start = date.fromisoformat(f"{keys[0]}-01")
        self.end = _next_month(date.fromisoformat(f"{keys[-1]}-01"))  # exclusive

    @classmethod
    def plotted(cls) -> "Months":
        return cls(monthly_partitions.get_partition_keys()[-PLOTTED_PARTITIONS:-1])

    def days(self) -> list[str]:
        return [
            (self.start + timedelta(days=i)).isoformat()
            for i in range((self.end - self.start).days)
        ]


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=31)).replace(day=1)


def crashes_per_day(month: date, first: date) -> tuple[int, int]:
    """Few crashes a day, so that ten years land in minutes, but more in summer than in winter
    and slowly more over the years: a shape for the plots to show."""
    season = 1 + 0.3 * math.cos(2 * math.pi * (month.month - 7) / 12)
    trend = 1 + 0.004 * ((month.year - first.year) * 12 + month.month - first.month)
    mean = 22 * season * trend
    return round(mean * 0.8), round(mean * 1.2)


def generate_rows(months: Months) -> dict[str, list[Row]]:
    """The rows of every day of `months`, a month at a time with that month's volume. A day's
    rows depend only on its date and volume, so generating in pieces changes neither rows nor
    ids."""
    rows: dict[str, list[Row]] = {name: [] for name in DATASETS}
    month = months.start
    while month < months.end:
        following = _next_month(month)
        part = generate(month, following, crashes_per_day=crashes_per_day(month, months.start))
        for name, dataset_rows in part.items():
            rows[name].extend(dataset_rows)
        month = following
    return rows


def land_raw_days(dev: DagsterDev, days: list[str], timeout: float = 1800) -> str:
    """Backfill the three raw assets over `days` as the UI's "Launch backfill" does; return the
    backfill's id once it has succeeded."""
    backfill_id = dev.launch_backfill(list(DATASETS), days)
    deadline = time.monotonic() + timeout
    while (status := dev.backfill_status(backfill_id)) not in FINISHED:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"backfill {backfill_id} still {status} after {timeout} s:\n{dev.server.log_tail()}"
            )
        time.sleep(1)
    if status != "COMPLETED_SUCCESS":
        raise RuntimeError(f"backfill {backfill_id} ended {status}:\n{dev.server.log_tail()}")
    return backfill_id


def wait_for_processed_months(dev: DagsterDev, months: int, timeout: float = 1800) -> None:
    """Until the automation sensor has built `months` months of each processed asset.

    Nothing else launches them: the sensor's ticks (60 s apart at least) request the months
    whose raw days landed, as ranged runs the backfill daemon (a 30 s loop) launches.
    """
    deadline = time.monotonic() + timeout
    while True:
        stats = [dev.partition_stats(key) for key in PROCESSED_ASSETS]
        if any(s["numFailed"] for s in stats):
            raise RuntimeError(f"processed months failed: {stats}\n{dev.server.log_tail()}")
        if all(s["numMaterialized"] >= months for s in stats):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"processed months after {timeout} s: {stats}\n{dev.server.log_tail()}"
            )
        time.sleep(2)


def _pipe_above_9() -> tuple[int, int]:
    """A pipe numbered 10 and up: moving its ends onto 3 and 4 cannot overwrite one another."""
    ends = os.pipe()
    moved = (
        fcntl.fcntl(ends[0], fcntl.F_DUPFD_CLOEXEC, 10),
        fcntl.fcntl(ends[1], fcntl.F_DUPFD_CLOEXEC, 10),
    )
    for fd in ends:
        os.close(fd)
    return moved


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe.

    Its own --screenshot cannot press a button, which the plots need. The pipe
    (--remote-debugging-pipe) needs neither a port nor a package: Chromium reads commands on its
    fd 3 and answers on its fd 4, each message JSON ended by a NUL byte.
    """

    def __init__(self, workdir: Path) -> None:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            raise RuntimeError("Chromium not found: apt-get install chromium")
        commands_in, self._commands = _pipe_above_9()
        self._answers, answers_out = _pipe_above_9()
        profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        self._log = workdir / "chromium.log"
        with self._log.open("wb") as log:
            # subprocess keeps passed fds under their own numbers: bash moves them to 3 and 4
            # (dash cannot name fds above 9).
            self.process = subprocess.Popen(
                [
                    "bash",
                    "-c",
                    f'exec "$@" 3<&{commands_in} 4>&{answers_out} '
                    f"{commands_in}<&- {answers_out}>&-",
                    "chromium",
                    chromium,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    "--remote-debugging-pipe",
                ],
                pass_fds=(commands_in, answers_out),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        os.close(commands_in)
        os.close(answers_out)
        self._received = b""
        self._events: list[dict[str, Any]] = []
        self._last_id = 0

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call("Browser.close", timeout=10)
            self.process.wait(timeout=30)
        except (RuntimeError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            os.close(self._commands)
            os.close(self._answers)

    def call(
        self, method: str, session: str | None = None, timeout: float = 60, **params: Any
    ) -> dict[str, Any]:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while (answer := self._receive(deadline, method)).get("id") != self._last_id:
            if "method" in answer:
                self._events.append(answer)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def wait_for_event(self, method: str, session: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for event in self._events:
                if event["method"] == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return
            self._events.append(self._receive(deadline, method))

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._received:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise RuntimeError(f"Chromium: no {waiting_for} in time")
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                log = self._log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium exited, waiting for {waiting_for}:\n{log}")
            self._received += chunk
        message, self._received = self._received.split(b"\0", 1)
        return json.loads(message)

    def screenshot(
        self, url: str, out: Path, width: int, height: int, steps: Sequence[str] = ()
    ) -> None:
        """Render `url` in a `width` x `height` window, run each of `steps` (JavaScript) on it
        and let the page settle after each, then save what the window shows as PNG."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", session, url=url)
        self._settle(session)
        for step in steps:
            answer = self.call("Runtime.evaluate", session, expression=step)
            if "exceptionDetails" in answer:
                raise RuntimeError(f"{url}: {answer['exceptionDetails']}")
            self._settle(session)
        png = self.call("Page.captureScreenshot", session, format="png")["data"]
        out.write_bytes(base64.b64decode(png))
        self.call("Target.closeTarget", targetId=target)
        print(f"{out}: {url}")

    def _settle(self, session: str, timeout: float = 120) -> None:
        self.call(
            "Emulation.setVirtualTimePolicy",
            session,
            policy="pauseIfNetworkFetchesPending",
            budget=SETTLE_MS,
        )
        self.wait_for_event("Emulation.virtualTimeBudgetExpired", session, timeout)


def instance_config() -> dict[str, object]:
    """The test instance (whose automation sensors build the months), with two changes.

    - The sample instance's limits, which `make dev` copies: one backfill run at a time. The
      sensor requests each month as soon as its raw days have landed, so its runs would
      otherwise compete with the raw run, still landing later days, for the two cores.
    - No new-user pop-up (`nux`), which could cover the pages.
    """
    sample = yaml.safe_load(SAMPLE_INSTANCE_CONFIG.read_text())
    return {
        **TEST_INSTANCE_CONFIG,
        "concurrency": sample["concurrency"],
        "nux": {"enabled": False},
    }


def take_screenshots(dev: DagsterDev, backfill_id: str, out: Path, work: Path) -> None:
    """The three pages, each in a window sized to what it shows."""
    # The global lineage with both groups open, as its "expand all groups" (Alt+E) leaves the
    # URL; collapsed, the groups hide their assets. Raw days on the left, processed months on
    # the right; below 1,250 px high the graph no longer fits.
    groups = ",".join(f"global@global:{group}" for group in (RAW_GROUP_NAME, PROCESSED_GROUP_NAME))
    with Chromium(work) as chromium:
        chromium.screenshot(
            f"{dev.url}/asset-groups?{urlencode({'expanded': groups})}",
            out / "asset_graph.png",
            1600,
            1250,
        )
        # The raw backfill's overview: each asset's partitions targeted, succeeded and failed.
        chromium.screenshot(f"{dev.url}/runs/b/{backfill_id}", out / "backfill.png", 1600, 520)
        # processed/crashes' overview, its metadata section switched to plots: one per number,
        # over the months, beside the definition naming the automation sensor.
        chromium.screenshot(
            f"{dev.url}/assets/{PROCESSED_PREFIX}/crashes",
            out / "processed_plots.png",
            1600,
            1110,
            steps=[CLICK_PLOTS, SHOW_PLOTS],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    months = Months.plotted()
    with (
        tempfile.TemporaryDirectory(prefix="screenshots-") as tmp,
        SodaServer(generate_rows(months)) as server,
    ):
        work = Path(tmp)
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
        env = {
            **os.environ,
            "SOCRATA_DOMAIN": server.url,
            "COLLISIONS_STORAGE_URL": str(work / "collisions_raw_data"),
            "COLLISIONS_PROCESSED_URL": str(work / "collisions_processed_data"),
            "DAGSTER_HOME": str(home),
        }
        dev = DagsterDev(env, work / "dagster_dev.log")
        try:
            dev.wait_until_loaded(timeout=120, alive=dev.server.assert_running)
            backfill_id = land_raw_days(dev, months.days())
            landed = time.monotonic()
            print(
                f"raw days {months.start}..{months.end - timedelta(days=1)} landed after "
                f"{landed - started:.0f} s"
            )
            wait_for_processed_months(dev, len(months.keys))
            print(
                f"the automation sensor's last processed month of {len(months.keys)} built "
                f"{time.monotonic() - landed:.0f} s later"
            )
            take_screenshots(dev, backfill_id, args.out, work)
        finally:
            dev.server.stop()
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
