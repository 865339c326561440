"""The UI's live run log on the sample instance: the webserver's GraphQL subscription, which the
run page reads, streams a running range's days as they are recorded through the pooled SQLite
event log, whose writes reach the run's database file only at checkpoints."""

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests
from websockets.sync.client import connect

from nyc_collisions_dagster_tests.recorded_days import DAYS, start_slow_run, write_script
from nyc_collisions_dagster_tests.soda_fake.processes import ServerProcess, free_port

SAMPLE_INSTANCE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
SUBSCRIPTION = """
subscription RunLogs($runId: ID!) {
  pipelineRunLogs(runId: $runId) {
    __typename
    ... on PipelineRunLogsSubscriptionSuccess {
      messages { __typename ... on MaterializationEvent { partition } }
    }
  }
}
"""


def _wait_for_webserver(port: int, server: ServerProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert server.process.poll() is None, server.log_tail()
        try:
            if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.5)


@pytest.mark.webserver
def test_the_run_page_hears_each_day_while_the_range_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(SAMPLE_INSTANCE_CONFIG, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    port = free_port()
    server = ServerProcess(
        [WEBSERVER, "-h", "127.0.0.1", "-p", str(port), "-f", write_script(tmp_path)],
        {**os.environ, "DAGSTER_HOME": str(home)},
        tmp_path / "webserver.log",
    )
    run = None
    try:
        _wait_for_webserver(port, server)
        run = start_slow_run(tmp_path, home, day_seconds=0.3)
        with dg.DagsterInstance.get() as instance:
            deadline = time.monotonic() + 60
            while not (runs := instance.get_runs()):
                assert time.monotonic() < deadline and run.poll() is None, "no run started"
                time.sleep(0.1)
            run_id = runs[0].run_id
        heard: list[str] = []
        with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-ws"]) as socket:
            socket.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(socket.recv(timeout=30))["type"] == "connection_ack"
            start = {"query": SUBSCRIPTION, "variables": {"runId": run_id}}
            socket.send(json.dumps({"id": "1", "type": "start", "payload": start}))
            deadline = time.monotonic() + 60
            while len(heard) < 5:
                assert time.monotonic() < deadline, f"heard {heard} in 60 s"
                message = json.loads(socket.recv(timeout=30))
                if message["type"] != "data":
                    continue
                logs = message["payload"]["data"]["pipelineRunLogs"]
                assert logs["__typename"] == "PipelineRunLogsSubscriptionSuccess", logs
                heard += [
                    event["partition"]
                    for event in logs["messages"]
                    if event["__typename"] == "MaterializationEvent"
                ]
        # Five days heard, each 0.3 s apart, while the 30-day range still runs: live, not at the
        # end (a watcher of the database file alone hears them at the run's last checkpoint).
        assert run.poll() is None, "the range ended before its days were heard"
        assert heard == DAYS[: len(heard)]
    finally:
        if run is not None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        server.stop()
