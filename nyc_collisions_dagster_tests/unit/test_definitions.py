"""Definitions load, validate and expose every name the UI, the CLI and users rely on."""

import tomllib
from pathlib import Path

import dagster as dg
import yaml

from nyc_collisions_dagster.definitions import defs
from nyc_collisions_dagster.partitions import daily_partitions, monthly_partitions
from nyc_collisions_dagster.raw.schema import SCHEMAS

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET_IDS = {"crashes": "h9gi-nx95", "persons": "f55k-p6yu", "vehicles": "bm4k-52h4"}


def test_every_asset_is_daily_single_run_and_described() -> None:
    for name, dataset_id in DATASET_IDS.items():
        spec = defs.resolve_assets_def(name).specs_by_key[dg.AssetKey(name)]
        assets_def = defs.resolve_assets_def(name)
        assert assets_def.partitions_def == daily_partitions
        assert assets_def.backfill_policy == dg.BackfillPolicy.single_run()
        assert dataset_id in spec.description
        assert spec.group_name == "collisions_raw_data"
        assert {"socrata", "parquet"} <= set(spec.kinds)
        columns = spec.metadata["dagster/column_schema"].columns
        assert [column.name for column in columns] == SCHEMAS[name].names
        # The lake check is evaluated in the asset's step, and can run alone (the UI's Execute).
        assert dg.AssetCheckKey(dg.AssetKey(name), "lake_matches_source") in assets_def.check_keys
        assert assets_def.can_subset


def test_processed_tables_are_monthly_single_run_and_depend_on_their_raw_days() -> None:
    parents = {
        "crashes": {"crashes", "persons", "vehicles"},
        "persons": {"persons", "crashes"},
        "vehicles": {"vehicles", "crashes"},
    }
    for name, raw in parents.items():
        key = dg.AssetKey(["processed", name])
        assets_def = defs.resolve_assets_def(key)
        spec = assets_def.specs_by_key[key]
        assert assets_def.partitions_def == monthly_partitions
        assert assets_def.backfill_policy == dg.BackfillPolicy.single_run()
        assert spec.group_name == "collisions_processed_data"
        assert {dep.asset_key.to_user_string() for dep in spec.deps} == raw
        assert spec.automation_condition is not None
        # The UI's column schema describes each column the layer adds or changes.
        columns = spec.metadata["dagster/column_schema"].columns
        described = {column.name for column in columns if column.description}
        assert {"crash_datetime", "crash_hour"} <= described < {column.name for column in columns}
    assert monthly_partitions.get_first_partition_key() == "2012-07"
    sensor = defs.resolve_sensor_def("processed_automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_partitions_are_new_york_days_from_july_2012() -> None:
    keys = daily_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange("2012-07-01", "2012-07-03")
    )
    assert keys == ["2012-07-01", "2012-07-02", "2012-07-03"]
    assert daily_partitions.get_first_partition_key() == "2012-07-01"
    assert daily_partitions.timezone == "America/New_York"


def test_workspace_and_pyproject_point_at_the_definitions() -> None:
    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    assert (
        workspace["load_from"][0]["python_module"]["module_name"]
        == "nyc_collisions_dagster.definitions"
    )
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == "nyc_collisions_dagster.definitions"
