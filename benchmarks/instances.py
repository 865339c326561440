"""Dagster instances for measured runs: the default SQLite one, or PostgreSQL from Debian's
`postgresql` package, each fresh for its run, and Dagster's settings for writing events.

PostgreSQL is the suite's server (nyc_collisions_dagster_tests/postgres.py): started as a user
of its own in a temporary folder, one database per run, with its default durability: a commit is
flushed to disk, as in production and as SQLite's are.
"""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import harness
from nyc_collisions_dagster_tests.postgres import PostgresServer

# Dagster's stock PostgreSQL storage, with the connection written out: the benchmark reads each
# instance from its folder alone.
_POSTGRES_STORAGE = """storage:
  postgres:
    postgres_db: {connection}
"""
# As deploy/vm/dagster.yaml, production's: the same, with the event log kept in a pool.
_POOLED_POSTGRES_STORAGE = """run_storage:
  module: dagster_postgres.run_storage
  class: PostgresRunStorage
  config:
    postgres_db: {connection}
event_log_storage:
  module: nyc_collisions_dagster.instance.postgres
  class: PooledPostgresEventLogStorage
  config:
    postgres_db: {connection}
schedule_storage:
  module: dagster_postgres.schedule_storage
  class: PostgresScheduleStorage
  config:
    postgres_db: {connection}
"""
# As deploy/dagster.yaml, the local instance's.
_POOLED_SQLITE_STORAGE = """event_log_storage:
  module: nyc_collisions_dagster.instance.sqlite
  class: PooledSqliteEventLogStorage
"""


@dataclass(frozen=True)
class Settings:
    """Environment variables read by Dagster 1.13 (in dagster/_core, not in its docs) that change
    how a ranged run's events are written.

    `subset`: DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS, one "planned" event per asset
    holding the run's partitions instead of one per partition (run_domain.py; base.py warns that
    partitions are then not marked failed when the run fails). `batch`: DAGSTER_EVENT_BATCH_SIZE,
    events that Dagster sends as a batch (the planned events, an output's materializations) are
    stored that many at a time: one INSERT on PostgreSQL for materializations, a loop of single
    inserts on SQLite (event_methods.py, dagster_postgres/event_log/event_log.py).
    """

    subset: bool = False
    batch: int = 0

    @property
    def label(self) -> str:
        parts = (["subset planned events"] if self.subset else []) + (
            [f"event batches of {self.batch:,}"] if self.batch else []
        )
        return ", ".join(parts) or "defaults"

    def env(self) -> dict[str, str]:
        return {
            **({"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"} if self.subset else {}),
            **({"DAGSTER_EVENT_BATCH_SIZE": str(self.batch)} if self.batch else {}),
        }


DEFAULTS = Settings()
SETTINGS_NAMES = ("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "DAGSTER_EVENT_BATCH_SIZE")


class Instances:
    """Fresh DAGSTER_HOMEs in a scratch folder; PostgreSQL is started on first use."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self._postgres: PostgresServer | None = None

    def home(self, name: str, storage: str, pooled: bool = False) -> Path:
        """A new instance's DAGSTER_HOME: "sqlite", or "postgres" with a database of its own;
        with Dagster's stock event log storage, or the project's pooled one."""
        home = harness.fresh_dagster_home(self.scratch / name)
        config = home / "dagster.yaml"
        if storage == "sqlite" and pooled:
            config.write_text(config.read_text() + _POOLED_SQLITE_STORAGE)
        if storage == "postgres":
            if self._postgres is None:
                harness.progress("starting PostgreSQL (Debian's postgresql package)")
                self._postgres = PostgresServer(durable=True).start()
            database = f"run_{uuid.uuid4().hex[:12]}"
            self._postgres.create_database(database)
            found = self._postgres.connection(database)
            connection = json.dumps(  # a YAML flow mapping, in Dagster's names
                {
                    "hostname": found["host"],
                    "port": found["port"],
                    "username": found["user"],
                    "password": found["password"],
                    "db_name": found["dbname"],
                }
            )
            storage_yaml = _POOLED_POSTGRES_STORAGE if pooled else _POSTGRES_STORAGE
            config.write_text(config.read_text() + storage_yaml.format(connection=connection))
        return home

    def close(self) -> None:
        if self._postgres is not None:
            self._postgres.stop()


@contextmanager
def instances(scratch: Path) -> Iterator[Instances]:
    made = Instances(scratch)
    try:
        yield made
    finally:
        made.close()
