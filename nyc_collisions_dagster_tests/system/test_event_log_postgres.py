"""The pooled PostgreSQL event log storage of the production configs: it records what Dagster's
own records over a few connections instead of three a day, it survives its connections being
cut, and the Dagster internals it relies on are still there."""

import inspect
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_postgres import PostgresEventLogStorage

from nyc_collisions_dagster.instance.postgres import PooledPostgresEventLogStorage
from nyc_collisions_dagster_tests.postgres import PostgresServer
from nyc_collisions_dagster_tests.recorded_days import (
    DAYS,
    connections_opened,
    materialize_days,
    recorded_days,
)

DEPLOY_VM = Path(__file__).resolve().parents[2] / "deploy" / "vm" / "dagster.yaml"
STOCK = """storage:
  postgres:
    postgres_db:
      hostname: {env: DAGSTER_POSTGRES_HOST}
      port: {env: DAGSTER_POSTGRES_PORT}
      username: {env: DAGSTER_POSTGRES_USER}
      password: {env: DAGSTER_POSTGRES_PASSWORD}
      db_name: {env: DAGSTER_POSTGRES_DB}
telemetry:
  enabled: false
"""


@contextmanager
def _instance(
    postgres_server: PostgresServer,
    config: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dg.DagsterInstance]:
    """An instance of `config` on a database of its own."""
    database = f"events_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(database)
    for name, value in postgres_server.dagster_env(database).items():
        monkeypatch.setenv(name, value)
    home = tmp_path / database
    home.mkdir()
    (home / "dagster.yaml").write_text(config)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_the_production_config_records_every_day_over_a_few_connections(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded, opened = {}, {}
    for name, config in (("stock", STOCK), ("pooled", DEPLOY_VM.read_text())):
        with _instance(postgres_server, config, tmp_path, monkeypatch) as instance:
            storage = instance.event_log_storage
            assert isinstance(storage, PooledPostgresEventLogStorage) == (name == "pooled")
            with connections_opened() as count:
                materialize_days(instance)
            opened[name] = count[0]
            recorded[name] = recorded_days(instance)
    assert recorded["pooled"] == recorded["stock"] == [(day, 1) for day in DAYS]
    # Dagster's own opens three connections an event; the pooled one a few for the whole run
    # (the rest are the run storage's, a few per run).
    assert opened["stock"] >= 3 * len(DAYS), opened
    assert opened["pooled"] < len(DAYS), opened


def test_connections_cut_by_the_server_cost_a_reconnection_not_an_event(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted server or a proxy's idle timeout closes the pooled connection; the next event
    finds it closed before use and opens another."""
    with _instance(postgres_server, DEPLOY_VM.read_text(), tmp_path, monkeypatch) as instance:
        materialize_days(instance)
        connection = psycopg2.connect(**postgres_server.connection("postgres"))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                [os.environ["DAGSTER_POSTGRES_DB"]],
            )
            (cut,) = cursor.fetchone()
        connection.close()
        assert cut >= 1  # the pooled connection was open, and is gone
        materialize_days(instance)
        assert [day for day, _ in recorded_days(instance)] == sorted(DAYS * 2)


def test_the_dagster_internals_it_overrides_are_still_there() -> None:
    """A Dagster upgrade that changes what the pooled storage builds on fails here, by name."""
    init = PostgresEventLogStorage.__init__
    parameters = list(inspect.signature(init).parameters)
    missing = [
        f"PostgresEventLogStorage.__init__({name})"
        for name in ("postgres_url", "should_autocreate_tables", "inst_data", "token_provider")
        if name not in parameters
    ] + [
        f"PostgresEventLogStorage.__init__ sets {name}"
        for name in ("_engine", "_token_provider", "postgres_url")
        if name not in init.__code__.co_names
    ]
    missing += [
        f"PostgresEventLogStorage.{name}"
        for name in (
            "optimize_for_webserver",
            "dispose",
            "from_config_value",
            "has_table",
            "_has_asset_key_col_on_connection",  # remembered by instance/schema.py
        )
        if not callable(getattr(PostgresEventLogStorage, name, None))
    ]
    assert not missing, f"dagster-postgres changed: {missing}"
