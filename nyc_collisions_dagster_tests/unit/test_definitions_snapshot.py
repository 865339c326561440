"""The definitions' shape (assets, groups, partitions, deps, checks, columns, schedules, sensors)
equals the readable snapshot beside this file, so that a refactor proves it changed none of it.

After a deliberate change, rewrite it with `SNAPSHOT_UPDATE=1 pytest -k snapshot` and review the
snapshot's diff.
"""

import os
from pathlib import Path

import dagster as dg
import yaml

from nyc_collisions_dagster.definitions import defs

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.yaml")


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return (
            f"{partitions_def.cron_schedule} from {partitions_def.start:%Y-%m-%d} "
            f"({partitions_def.fmt}, end_offset {partitions_def.end_offset})"
        )
    return type(partitions_def).__name__


def _asset(assets_def: dg.AssetsDefinition, key: dg.AssetKey) -> dict[str, object]:
    spec = assets_def.specs_by_key[key]
    schema = spec.metadata.get("dagster/column_schema")
    return {
        "group": spec.group_name,
        "step": assets_def.node_def.name,
        "partitions": _partitions(assets_def.partitions_def),
        "backfill_policy": str(assets_def.backfill_policy),
        "kinds": sorted(spec.kinds),
        "deps": {
            dep.asset_key.to_user_string(): type(dep.partition_mapping).__name__
            if dep.partition_mapping
            else None
            for dep in spec.deps
        },
        "automation": None
        if spec.automation_condition is None
        else spec.automation_condition.get_label(),
        "checks": sorted(c.name for c in assets_def.check_keys if c.asset_key == key),
        "columns": [column.name for column in schema.columns] if schema else None,
    }


def shape() -> dict[str, object]:
    repository = defs.get_repository_def()
    assets = {}
    for assets_def in repository.assets_defs_by_key.values():
        for key in assets_def.keys:
            assets[key.to_user_string()] = _asset(assets_def, key)
    return {
        "assets": dict(sorted(assets.items())),
        "jobs": sorted(job.name for job in repository.get_all_jobs()),
        "schedules": {
            s.name: {"cron": s.cron_schedule, "job": s.job_name, "default": s.default_status.value}
            for s in repository.schedule_defs
        },
        "sensors": {
            s.name: {"default": s.default_status.value, "interval_s": s.minimum_interval_seconds}
            for s in sorted(repository.sensor_defs, key=lambda s: s.name)
        },
        "resources": sorted(repository.get_top_level_resources()),
    }


def test_definitions_match_the_snapshot() -> None:
    text = yaml.safe_dump(shape(), sort_keys=False, width=100)
    if os.environ.get("SNAPSHOT_UPDATE"):
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()
