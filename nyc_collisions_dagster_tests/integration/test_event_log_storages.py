"""The pooled SQLite event log storage: it records what Dagster's own records, over far fewer
connections; a reader in another process sees each day once it is committed; a run watched as
the UI watches it is heard while it runs; and the Dagster internals it relies on are still there.
"""

import inspect
import os
import signal
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata
from dagster._core.instance.methods.event_methods import EventMethods
from dagster._core.storage.event_log import SqliteEventLogStorage

from nyc_collisions_dagster.instance import sqlite
from nyc_collisions_dagster.instance.sqlite import PooledSqliteEventLogStorage
from nyc_collisions_dagster_tests.recorded_days import (
    DAYS,
    commits,
    connections_opened,
    days_grouped,
    materialize_days,
    recorded_days,
    start_slow_run,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_INSTANCE_CONFIG = REPO_ROOT / "deploy" / "dagster.yaml"


def _home(tmp_path: Path, pooled: bool) -> Path:
    home = tmp_path / ("pooled" if pooled else "stock")
    home.mkdir()
    config: dict = {"telemetry": {"enabled": False}}
    if pooled:  # the sample instance's own event log storage entry
        sample = yaml.safe_load(SAMPLE_INSTANCE_CONFIG.read_text())
        config["event_log_storage"] = sample["event_log_storage"]
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def test_the_sample_instance_uses_the_pooled_storage_where_dagster_keeps_its_event_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path, pooled=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert type(storage) is PooledSqliteEventLogStorage
        assert Path(storage._base_dir) == home / "history" / "runs"


def test_pooled_records_what_stock_records_over_a_few_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded, opened = {}, {}
    for pooled in (False, True):
        home = _home(tmp_path, pooled)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            with connections_opened() as count:
                materialize_days(instance)
            opened[pooled] = count[0]
            recorded[pooled] = recorded_days(instance)
            assert instance.get_materialized_partitions(dg.AssetKey("days")) == set(DAYS)
    assert recorded[True] == recorded[False] == [(day, 1) for day in DAYS]
    # Dagster's own event log opens two or three connections a day. The pooled one opens a few
    # per database (the run's and the index); the rest are the run storage's, a few per run.
    assert opened[False] >= 4 * len(DAYS), opened
    assert opened[True] < len(DAYS), opened


def test_days_recorded_together_are_stored_in_one_transaction_and_read_back_each_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The days a range writes between two looks are recorded as one batch (raw/recording.py):
    the pooled storage stores it in one transaction a database, and reads it back as Dagster's
    own stores it, event by event: each day, its row count, its data version, and the newest
    day as the asset's latest."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    key = dg.AssetKey("days_grouped")
    recorded, tags, latest, committed = {}, {}, {}, {}
    for pooled in (False, True):
        home = _home(tmp_path, pooled)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            with commits() as count:
                materialize_days(instance, asset=days_grouped)
            committed[pooled] = count[0]
            recorded[pooled] = recorded_days(instance, "days_grouped")
            assert instance.get_materialized_partitions(key) == set(DAYS)
            tags[pooled] = sorted(
                t["dagster/data_version"] for t in instance.get_event_tags_for_asset(key)
            )
            event = instance.get_latest_materialization_event(key)
            latest[pooled] = event and event.dagster_event and event.dagster_event.partition
    assert recorded[True] == recorded[False] == [(day, 1) for day in DAYS]
    assert tags[True] == tags[False] == DAYS
    assert latest[True] == latest[False] == DAYS[-1]
    # Dagster's stores a batch event by event, committing each on the run's database and on the
    # index; the pooled one commits the batch once on each. The run's other events are alike.
    assert committed[False] - committed[True] == 2 * (len(DAYS) - 1), committed


def test_a_killed_run_keeps_every_day_it_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path, pooled=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    run = start_slow_run(tmp_path, home, day_seconds=0.2)
    printed = []
    assert run.stdout is not None
    for line in run.stdout:
        if line.startswith("recorded "):
            printed.append(line.split()[1])
        if len(printed) == 10:
            break
    os.killpg(run.pid, signal.SIGKILL)  # no chance to flush or close anything
    run.wait()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        found = instance.get_materialized_partitions(dg.AssetKey("days"))
    # Each day is committed before the body moves on: all printed are there, and at most the
    # one being recorded as the kill landed is more.
    assert set(printed) <= found, sorted(set(printed) - found)
    assert found <= set(DAYS[: len(printed) + 1]), sorted(found)


def test_a_watched_run_is_heard_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI's live run log is the storage's `watch`: Dagster's wakes when the run's database
    file changes, which a pooled writer leaves to SQLite's checkpoints."""
    home = _home(tmp_path, pooled=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    run = start_slow_run(tmp_path, home, day_seconds=0.3)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 60
            while not (runs := instance.get_runs()):
                assert time.monotonic() < deadline and run.poll() is None, "no run started"
                time.sleep(0.1)
            heard: list[str] = []
            first_heard = threading.Event()

            def hear(entry: dg.EventLogEntry, _cursor: str) -> None:
                if entry.is_dagster_event and entry.dagster_event_type == (
                    dg.DagsterEventType.ASSET_MATERIALIZATION
                ):
                    heard.append(entry.asset_materialization.partition)  # type: ignore[union-attr]
                    first_heard.set()

            instance.watch_event_logs(runs[0].run_id, None, hear)
            assert first_heard.wait(30), "no materialization heard while the run ran"
            assert run.poll() is None, "the run ended before a day was heard"
            instance.end_watch_event_logs(runs[0].run_id, hear)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def test_the_dagster_internals_it_overrides_are_still_there() -> None:
    """A Dagster upgrade that renames or drops what the pooled storage builds on fails here,
    naming it, rather than in a user's run."""
    storage = SqliteEventLogStorage.__init__.__code__.co_names
    missing = [
        f"SqliteEventLogStorage.{name}"
        for name in (
            "_connect",
            "_initdb",
            "conn_string_for_shard",
            "has_table",
            "watch",
            "_has_asset_key_col_on_connection",  # remembered by instance/schema.py
            # what store_event_batch stores a batch with, as PostgreSQL's storage does
            "_event_to_row",
            "_store_asset_event_tags",
            "_store_asset_event",
            "run_connection",
            "index_transaction",
        )
        if not callable(getattr(SqliteEventLogStorage, name, None))
    ] + [
        f"SqliteEventLogStorage.__init__ sets {name}"
        for name in ("_db_lock", "_initialized_dbs", "_obs", "_watchers")
        if name not in storage
    ]
    watchdog = sqlite.SqliteEventLogStorageWatchdog
    missing += [
        f"SqliteEventLogStorageWatchdog.{name}"
        for name in ("_process_log", "on_modified", "patterns")
        if not hasattr(watchdog, name)
    ]
    if "_log_path" not in watchdog.__init__.__code__.co_names:
        missing.append("SqliteEventLogStorageWatchdog.__init__ sets _log_path")
    # What raw/recording.py builds a batch of days with, and the instance stores it whole by.
    if "batch_metadata" not in inspect.signature(DagsterEvent.asset_materialization).parameters:
        missing.append("DagsterEvent.asset_materialization(..., batch_metadata)")
    if set(DagsterEventBatchMetadata._fields) != {"id", "is_end"}:
        missing.append("DagsterEventBatchMetadata(id, is_end)")
    batching = inspect.getsource(EventMethods._get_event_batch_size)
    if "DAGSTER_EVENT_BATCH_SIZE" not in batching:
        missing.append("the instance's DAGSTER_EVENT_BATCH_SIZE")
    assert not missing, f"Dagster {dg.__version__} changed: {missing}"
