"""Long-lived server processes (moto's, Dagster's, PostgreSQL's), each in a process group of its
own, so that stopping one stops everything it started, and the checks that nothing outlived it.
The suite and the benchmarks start moto with the same command and wait for it the same way."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import requests

# Credentials moto accepts; nothing outside the loopback endpoint ever sees them.
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def moto_command(port: int) -> list[str]:
    """moto's S3 API in server mode on loopback: the real protocol, in a process of its own."""
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def wait_for_moto(endpoint: str, process: subprocess.Popen | None = None) -> None:
    """Return once moto at `endpoint` answers; fail within 30 s, or at once if it exited."""
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=1)
            return
        except requests.ConnectionError:
            exited = process is not None and process.poll() is not None
            if exited or time.monotonic() > deadline:
                raise RuntimeError(f"moto did not start at {endpoint}") from None
            time.sleep(0.1)


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _proc_stats() -> list[tuple[int, str, str, int, int]]:
    """(pid, command name, state, parent pid, process group) of every process, from /proc."""
    stats = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name, in parentheses, may hold spaces: split after its closing one.
            name, _, fields = stat.read_text().rpartition(")")
        except OSError:  # ended meanwhile
            continue
        state, parent, group = fields.split()[:3]
        stats.append(
            (int(stat.parent.name), name.partition("(")[2], state, int(parent), int(group))
        )
    return stats


def group_members(pgid: int) -> list[str]:
    """The live processes of a process group; zombies, which are dead and only wait for their
    new parent to reap them, are left out."""
    return [
        f"{pid} {name}"
        for pid, name, state, _, group in _proc_stats()
        if group == pgid and state != "Z"
    ]


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants, parents before children."""
    children: dict[int, list[int]] = {}
    for child, _, state, parent, _ in _proc_stats():
        if state != "Z":
            children.setdefault(parent, []).append(child)
    tree = [pid]
    for member in tree:
        tree.extend(children.get(member, []))
    return tree


class ServerProcess:
    """A command started in its own session and process group, its output in a log file.

    Servers started from a script ignore SIGTERM in some shells unless they lead their own
    group; leading one also lets `stop` reach every process they started (run workers too).
    """

    def __init__(
        self,
        command: Sequence[str | Path],
        env: dict[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = Path(command[0]).name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(part) for part in command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def assert_running(self) -> None:
        assert self.process.poll() is None, f"{self.name} exited:\n{self.log_tail()}"

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the whole group, SIGKILL what is left after `timeout`, reap the leader.

        Dagster's CLIs treat SIGTERM as SIGINT, so they ignore it where they inherited an
        ignored SIGINT (pytest run as a background job of a non-interactive shell): SIGKILL
        ends them then.
        """
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except ProcessLookupError:  # the whole group has ended already
            pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # The leader is gone; its children may still be shutting down.
        deadline = time.monotonic() + timeout
        while (left := group_members(self.pgid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if left:
            os.killpg(self.pgid, signal.SIGKILL)
            raise AssertionError(f"processes of {self.name} outlived it by {timeout} s: {left}")
