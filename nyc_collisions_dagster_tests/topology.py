"""The production topology on one machine, as deploy/vm/ describes it: a code server, the
webserver and the daemon as three process groups sharing one instance in PostgreSQL."""

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from nyc_collisions_dagster.raw.recording import BATCHED_INSTANCE
from nyc_collisions_dagster_tests.soda_fake.processes import ServerProcess, free_port, port_is_open
from nyc_collisions_dagster_tests.ui_api import Webserver

REPO_ROOT = Path(__file__).resolve().parents[1]
VM = REPO_ROOT / "deploy" / "vm"
BIN = Path(sys.executable).parent
MODULE = "nyc_collisions_dagster.definitions"

# The only changes the test makes to deploy/vm/dagster.yaml, whose connection settings come
# from the environment: its loops turn in seconds instead of 5 to 60 s. The backfill
# daemon's 30 s loop is fixed in Dagster (DEFAULT_DAEMON_INTERVAL_SECONDS).
FASTER_LOOPS: dict[tuple[str, ...], int] = {
    ("run_coordinator", "config", "dequeue_interval_seconds"): 1,
    ("run_monitoring", "poll_interval_seconds"): 1,
    # Long enough for the test to see a dead step's slot still held before it is given back.
    ("run_monitoring", "free_slots_after_run_end_seconds"): 3,
}


def with_faster_loops(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with FASTER_LOOPS applied; each of them must be a setting it already has."""
    faster = yaml.safe_load(yaml.safe_dump(config))
    for path, seconds in FASTER_LOOPS.items():
        *parents, name = path
        section = faster
        for parent in parents:
            section = section[parent]
        assert name in section, f"deploy/vm/dagster.yaml has no {'.'.join(path)}"
        section[name] = seconds
    return faster


class Topology:
    """Writes $DAGSTER_HOME's dagster.yaml and workspace.yaml; `start` starts the code server
    and the webserver, `start_daemon` the third process, `stop` ends whichever were started."""

    def __init__(self, home: Path, env: dict[str, str], logs: Path) -> None:
        instance = yaml.safe_load((VM / "dagster.yaml").read_text())
        (home / "dagster.yaml").write_text(yaml.safe_dump(with_faster_loops(instance)))
        self.code_port = free_port()
        workspace = yaml.safe_load((VM / "workspace.yaml").read_text())
        workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=self.code_port)
        (home / "workspace.yaml").write_text(yaml.safe_dump(workspace))
        self.env = {**env, "DAGSTER_HOME": str(home)}
        self.home, self.logs = home, logs
        self.webserver = Webserver(
            free_port(), workspace["load_from"][0]["grpc_server"]["location_name"]
        )
        self.servers: dict[str, ServerProcess] = {}

    def start(self) -> None:
        self._start(
            "code_server",
            [
                "dagster",
                "code-server",
                "start",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.code_port),
                "-m",
                MODULE,
            ],
        )
        # The code server opens its port once the definitions are loaded; a webserver started
        # before would show the location as unreachable until its next reconnection attempt.
        deadline = time.monotonic() + 90
        while not port_is_open(self.code_port):
            self.servers["code_server"].assert_running()
            assert time.monotonic() < deadline, self.servers["code_server"].log_tail()
            time.sleep(0.1)
        self._start(
            "webserver",
            [
                "dagster-webserver",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.webserver.port),
                "-w",
                "workspace.yaml",
            ],
        )

    def _start(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> None:
        # Each start of a server logs to a file of its own: a restarted daemon keeps the log
        # of the one before it.
        starts = sum(1 for _ in self.logs.glob(f"{name}*.log"))
        log = self.logs / (f"{name}.log" if not starts else f"{name}.{starts + 1}.log")
        self.servers[name] = ServerProcess(
            [BIN / command[0], *command[1:]], {**self.env, **(env or {})}, log, cwd=self.home
        )

    def start_daemon(self, env: Mapping[str, str] | None = None) -> None:
        """The daemon, with `env` added to the servers' environment (a clock of its own)."""
        self._start("daemon", ["dagster-daemon", "run", "-w", "workspace.yaml"], env)

    def stop_daemon(self, grace: float = 30) -> None:
        """SIGTERM, then SIGKILL if it is still there after `grace` seconds, as a deploy does."""
        self.servers.pop("daemon").stop(grace)

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """`condition()`'s first true value, checked every half second while the servers run."""
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            self.assert_running()
            assert time.monotonic() < deadline, f"{what} not within {timeout} s\n{self.log_tails()}"
            time.sleep(0.5)
        return result

    def assert_running(self) -> None:
        for server in self.servers.values():
            server.assert_running()

    def server_pids(self) -> set[int]:
        return {server.process.pid for server in self.servers.values()}

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {name}:\n{server.log_tail(2500)}" for name, server in self.servers.items()
        )

    def stop(self) -> None:
        """The daemon first (it launches runs), the code server last (it runs them); every
        server is stopped even when one outlived its stop."""
        failures = []
        for name in ("daemon", "webserver", "code_server"):
            try:
                if name in self.servers:
                    self.servers[name].stop()
            except AssertionError as failure:
                failures.append(str(failure))
        failures += [
            f"port {port} is still open"
            for port in (self.webserver.port, self.code_port)
            if port_is_open(port)
        ]
        assert not failures, failures


@contextmanager
def started_topology(
    socrata: str, settings: Mapping[str, str], storage_url: str, folder: Path
) -> Iterator[Topology]:
    """deploy/vm/'s code server and webserver reading `socrata` and writing `storage_url`, with
    `settings` (AWS, PostgreSQL) in their environment and their home and logs under `folder`."""
    home = folder / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        **settings,
        "SOCRATA_DOMAIN": socrata,
        "COLLISIONS_STORAGE_URL": storage_url,
        "COLLISIONS_REPORTS_URL": str(folder / "collisions_reports"),
        **BATCHED_INSTANCE,  # as docs/deploy.md's one machine exports it
        # The executor may start all three steps of a run at once, whatever the machine's
        # cores: only the pool holds them back.
        "DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT": "3",
    }
    topology = Topology(home, env, folder)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()
