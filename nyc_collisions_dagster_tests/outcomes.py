"""What runs must produce, computed from the source rows in plain Python; how they failed; the
runs a sensor asks for, and carrying them out."""

from collections.abc import Iterable
from datetime import date

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.raw.schema import SCHEMAS
from nyc_collisions_dagster_tests.generator import FIELDS, Row

_PARSE = {pa.int64(): int, pa.float64(): float, pa.date32(): lambda v: date.fromisoformat(v[:10])}


def typed_rows(asset: str, rows: Iterable[Row], day: date) -> list[dict[str, object]]:
    """The source rows whose crash_date is `day`, typed as the contract says, sorted by key."""
    names = FIELDS[asset]
    wanted = day.isoformat()
    out = []
    for row in rows:
        record = dict(zip(names, row))
        if not record["crash_date"].startswith(wanted):
            continue
        out.append(
            {
                field.name: None
                if record.get(field.name) is None
                else _PARSE.get(field.type, str)(record[field.name])
                for field in SCHEMAS[asset]
            }
        )
    return sorted(out, key=lambda r: r[DATASETS[asset].unique_key])


def file_rows(path: str, filesystem: object | None = None) -> list[dict[str, object]]:
    return pq.read_table(path, filesystem=filesystem).to_pylist()


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The step failure as the UI shows it: Dagster's wrapper, then its causes."""
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def requested(result: dg.SensorResult) -> set[tuple[str, str, str]]:
    """(asset, first day, last day) of each run a sensor requested, per asset."""
    out = set()
    for request in result.run_requests:
        start = request.partition_key or request.tags["dagster/asset_partition_range_start"]
        end = request.partition_key or request.tags["dagster/asset_partition_range_end"]
        for key in request.asset_selection:
            out.add((key.to_user_string(), start, end))
    return out


def run_requested(
    result: dg.SensorResult,
    resources: dict[str, object],
    instance: dg.DagsterInstance | None = None,
) -> None:
    """Carry out a sensor's run requests in process, as the daemon would launch them."""
    assets = {a.key.to_user_string(): a for a in collision_assets}
    for request in result.run_requests:
        selected = [assets[k.to_user_string()] for k in request.asset_selection]
        if request.partition_key:
            partition = {"partition_key": request.partition_key}
        else:
            partition = {"tags": dict(request.tags)}
        assert dg.materialize(selected, resources=resources, instance=instance, **partition).success
