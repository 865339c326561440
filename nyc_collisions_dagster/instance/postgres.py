"""Dagster's PostgreSQL event log storage, with one connection kept open per process instead of
three opened for every event (the why: instance/__init__.py).

Each connection Dagster's opens costs a TCP connection, a backend forked and a SCRAM handshake.
This one keeps a small pool, as Dagster's own does in the webserver alone.
"""

from collections.abc import Mapping
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

from nyc_collisions_dagster.instance.schema import RemembersSchema

# One connection stays open; a nested use borrows one more, closed on return.
_POOL = {"pool_size": 1, "max_overflow": 4}
# A connection older than this is replaced before use, and each is checked before use, so that a
# restarted server or a proxy's idle timeout costs one reconnection, not a failed event.
_RECYCLE_SECONDS = 600


class PooledPostgresEventLogStorage(RemembersSchema, PostgresEventLogStorage):
    """Dagster's PostgreSQL event log storage, with one connection kept open per process.

    It takes the same config as Dagster's (postgres_url or postgres_db), as a storage of its own
    beside the run and schedule storages (`storage: postgres:` takes no custom class):

        event_log_storage:
          module: nyc_collisions_dagster.instance.postgres
          class: PooledPostgresEventLogStorage
          config:
            postgres_db: ...
    """

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        # As the webserver's own engine (optimize_for_webserver), without its statement timeout.
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_recycle=_RECYCLE_SECONDS,
            pool_pre_ping=True,
            **_POOL,
        )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "PooledPostgresEventLogStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def optimize_for_webserver(
        self, statement_timeout: int, pool_recycle: int, max_overflow: int
    ) -> None:
        self._engine.dispose()  # replaced by the webserver's own pool
        super().optimize_for_webserver(statement_timeout, pool_recycle, max_overflow)

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()
