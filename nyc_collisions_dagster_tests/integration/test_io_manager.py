"""The raw layer's IO manager hands downstream assets their raw days, and stores no outputs."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster.partitions import daily_partitions
from nyc_collisions_dagster.raw.assets import crashes

_LOADED: dict[str, pd.DataFrame] = {}


@dg.asset(
    partitions_def=daily_partitions,
    ins={"crashes": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-2))},
    io_manager_key="mem_io_manager",
)
def crashes_this_week_so_far(crashes: pd.DataFrame) -> int:
    """A downstream asset of a user's: the raw crashes of its day and the two before it."""
    _LOADED["crashes"] = crashes
    return len(crashes)


def test_a_downstream_asset_loads_a_range_of_raw_days_as_a_dataframe(
    resources, local_storage
) -> None:
    landed = dg.materialize(
        [crashes],
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": "2024-01-03",
            "dagster/asset_partition_range_end": "2024-01-05",
        },
    )
    assert landed.success
    result = dg.materialize(
        [crashes.to_source_asset(), crashes_this_week_so_far],
        resources={**resources, "mem_io_manager": dg.InMemoryIOManager()},
        partition_key="2024-01-05",
        selection=[crashes_this_week_so_far],
    )
    assert result.success
    files = [Path(local_storage) / "crashes" / f"2024-01-0{day}.parquet" for day in (3, 4, 5)]
    expected = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    loaded = _LOADED["crashes"]
    assert len(loaded) == len(expected) > 0
    assert sorted({str(day) for day in loaded["crash_date"]}) == [
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]
    assert sorted(loaded["collision_id"]) == sorted(expected["collision_id"])
    assert result.output_for_node("crashes_this_week_so_far") == len(expected)


def test_an_output_sent_to_the_raw_layer_is_refused_naming_the_asset(resources) -> None:
    @dg.asset
    def stray() -> int:
        return 1

    with pytest.raises(dg.DagsterInvariantViolationError, match="stray: the raw layer's IO"):
        dg.materialize([stray], resources=resources)
