"""Dagster's SQLite event log storage, with its connections kept open instead of opened for every
event (the why: instance/__init__.py).

Dagster's opens a new engine for each of the two or three connections an event takes, reflects
tables it has seen before, and, closing what is then the database's last connection, checkpoints
the write-ahead log into the database file with an fsync, twice an event. This one keeps an engine
and one open connection for each database, in the same files and tables.
"""

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._core.event_api import EventHandlerFn
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from watchdog.observers import Observer

from nyc_collisions_dagster.instance.schema import RemembersSchema

# The run shards whose engines a process keeps: a run worker writes one, the webserver reads the
# runs that are being looked at. The index shard's is always kept.
_RUN_SHARDS_KEPT = 8
# One connection stays open for each database; a nested use (Dagster's `_initdb` inspects tables
# while it holds a connection) borrows one more, closed on return.
_POOL = {"pool_size": 1, "max_overflow": 4}


class PooledSqliteEventLogStorage(RemembersSchema, SqliteEventLogStorage):
    """Dagster's SQLite event log storage, with an engine and one open connection per database.

    In dagster.yaml, with the event log where Dagster keeps it by default ($DAGSTER_HOME/history/
    runs); `base_dir` moves it:

        event_log_storage:
          module: nyc_collisions_dagster.instance.sqlite
          class: PooledSqliteEventLogStorage
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir or _default_base_dir(type(self).__name__), inst_data)

    @classmethod
    def config_type(cls) -> Mapping[str, dg.Field]:
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "PooledSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, made once; the least recently used run shard's is closed when
        more than _RUN_SHARDS_KEPT are open."""
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                    **_POOL,
                )
                db.event.listen(engine, "connect", _commit_without_fsync)
                self._engines[shard] = engine
            self._engines.move_to_end(shard)
            run_shards = [name for name in self._engines if name != INDEX_SHARD_NAME]
            for name in run_shards[: max(0, len(run_shards) - _RUN_SHARDS_KEPT)]:
                self._engines.pop(name).dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # As Dagster's own, under its lock (one connection in use at a time), but from the
        # shard's engine: its pooled connection, statements compiled once, no checkpoint on close.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        """A batch of one run's materializations in one transaction on each database, as
        PostgreSQL's storage stores it in one INSERT; Dagster's stores it event by event."""
        kinds = {event.get_dagster_event().event_type for event in events}
        if (
            kinds != {dg.DagsterEventType.ASSET_MATERIALIZATION}
            or len({event.run_id for event in events}) != 1
        ):
            super().store_event_batch(events)
            return
        table = SqlEventLogStorageTable
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(table.insert(), rows)
        with self.index_transaction() as conn:
            inserted = conn.execute(
                table.insert().returning(table.c.id, sort_by_parameter_order=True), rows
            )
            ids = [row[0] for row in inserted]
            self._store_asset_event_tags(conn, events, ids)
            # The asset's row keeps its latest event, as PostgreSQL's batch leaves it.
            self._store_asset_event(conn, events[-1], ids[-1])

    def watch(self, run_id: str, cursor: str | None, callback: EventHandlerFn) -> None:
        # As Dagster's own, with a watchdog that also wakes on the write-ahead log (below).
        observer: Any = self._obs  # Dagster declares it None, until the first watch
        if observer is None:
            observer = Observer()
            observer.start()
            self._obs = observer
        watchdog = _WalWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (
            watchdog,
            observer.schedule(watchdog, self._base_dir, recursive=True),
        )

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def _commit_without_fsync(connection: Any, _: object) -> None:
    """A commit is written to the write-ahead log, which SQLite flushes to disk at checkpoints
    rather than at every commit: a commit survives the process being killed, as at FULL, and
    only a power loss or an OS crash may take back the last ones (sqlite.org/pragma.html
    #pragma_synchronous). Dagster's own flushes twice an event."""
    connection.execute("PRAGMA synchronous=NORMAL")


class _WalWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's watchdog of a run's new events, woken by its database file or its write-ahead
    log. With the writer's connection kept open, a commit changes only the write-ahead log
    ({run}.db-wal) until SQLite checkpoints it into the database file, which alone wakes Dagster's.
    """

    @property
    def patterns(self) -> list[str]:
        return [self._log_path, f"{self._log_path}-wal"]

    def on_modified(self, event: Any) -> None:
        self._process_log()


def _default_base_dir(storage: str) -> str:
    """Where Dagster's default instance keeps its event log: $DAGSTER_HOME/history/runs."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise dg.DagsterInvariantViolationError(
            f"{storage} keeps its files under $DAGSTER_HOME: set DAGSTER_HOME, or base_dir in "
            "its config"
        )
    return os.path.join(home, "history", "runs", "")
