"""A PostgreSQL server from Debian's `postgresql` package, in a temporary folder, on loopback.

The server refuses to run as root, and test machines run as root: there it runs as the
`postgres` system user (or `nobody`), which owns the temporary folder.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

from nyc_collisions_dagster_tests.soda_fake.processes import free_port, group_members, port_is_open

POSTGRES_ROOT = Path("/usr/lib/postgresql")
USER = "dagster"
_NOT_DURABLE = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
PASSWORD = "dagster-test-password"


def _bin_dir() -> Path:
    """The newest installed server's binaries, e.g. /usr/lib/postgresql/15/bin."""
    servers = sorted(POSTGRES_ROOT.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not servers:
        raise RuntimeError(
            f"No PostgreSQL server under {POSTGRES_ROOT}: `apt-get install postgresql` "
            "(`make test` does it on a machine that lacks it)"
        )
    return servers[-1].parent


def _account() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None when this process is not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists")


class PostgresServer:
    """initdb and postgres in a temporary folder, reachable over TCP on 127.0.0.1 only, with
    password authentication (scram-sha-256) for one superuser, as in production.

    Commits are not flushed to disk unless ``durable``: the tests' data lives as long as the
    test, while a benchmark of commit-heavy work must pay for them as production does.
    """

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.port = 0
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._account = _account()

    def _as_account(self) -> dict[str, Any]:
        """Popen arguments that drop root for the server's own account."""
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 60) -> "PostgresServer":
        binaries = _bin_dir()
        self.folder = Path(tempfile.mkdtemp(prefix="dagster-postgres-"))
        password_file = self.folder / "password"
        password_file.write_text(PASSWORD)
        if self._account is not None:
            for path in (self.folder, password_file):
                os.chown(path, self._account.pw_uid, self._account.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "HOME": str(self.folder),
        }
        data = self.folder / "data"
        subprocess.run(
            [
                binaries / "initdb",
                "-D",
                data,
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=timeout,
            **self._as_account(),
        )
        self.port = free_port()
        with (self.folder / "postgres.log").open("wb") as log:
            self.process = subprocess.Popen(
                # No Unix socket: only the loopback port, as a remote database would be reached.
                [
                    binaries / "postgres",
                    "-D",
                    data,
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    *([] if self.durable else _NOT_DURABLE),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._as_account(),
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(**self.connection("postgres")).close()
                return self
            except psycopg2.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def connection(self, database: str) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": USER,
            "password": PASSWORD,
            "dbname": database,
        }

    def create_database(self, name: str) -> None:
        connection = psycopg2.connect(**self.connection("postgres"))
        try:
            connection.autocommit = True  # CREATE DATABASE refuses to run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()

    def dagster_env(self, database: str) -> dict[str, str]:
        """The connection settings that the deploy/ instance configs read."""
        return {
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": USER,
            "DAGSTER_POSTGRES_PASSWORD": PASSWORD,
            "DAGSTER_POSTGRES_DB": database,
        }

    def log_tail(self, chars: int = 3000) -> str:
        assert self.folder is not None
        return (self.folder / "postgres.log").read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT: disconnect clients, then exit), then remove the folder."""
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            # The server exits after its backends: none may be left.
            assert not group_members(self.process.pid), group_members(self.process.pid)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        assert not port_is_open(self.port), f"PostgreSQL's port {self.port} is still open"
