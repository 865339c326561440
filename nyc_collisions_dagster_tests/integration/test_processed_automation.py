"""Declarative automation rebuilds exactly the months whose raw days changed, old ones too."""

import dagster as dg
import pytest

from nyc_collisions_dagster.definitions import defs
from nyc_collisions_dagster.processed.assets import processed_key, processed_tables
from nyc_collisions_dagster.raw.assets import collision_assets, crashes, persons

PROCESSED = [processed_key(name) for name in ("crashes", "persons", "vehicles")]

# Socrata only lands the raw days these tests start from; test_assets and test_cli read it on
# both transports.
pytestmark = pytest.mark.one_transport


def _range(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


class Ticks:
    """The automation sensor's ticks, evaluated by Dagster with the cursor carried between them."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def requested(self) -> dict[str, set[str]]:
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        found = {key.to_user_string(): result.get_requested_partitions(key) for key in PROCESSED}
        return {key: set(months) for key, months in found.items() if months}


def test_changed_raw_days_request_exactly_their_months(both_layers) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance)
    assert ticks.requested() == {}

    def run(assets: list, **kwargs: object) -> None:
        assert dg.materialize(assets, resources=both_layers, instance=instance, **kwargs).success

    run(collision_assets, tags=_range("2024-02-01", "2024-02-29"))
    run(collision_assets, tags=_range("2024-04-01", "2024-04-30"))
    # Whole months landed: both are requested, for every processed table. March, with no raw
    # day landed, is not.
    both = {"2024-02", "2024-04"}
    assert ticks.requested() == {key.to_user_string(): both for key in PROCESSED}
    for month in sorted(both):
        run([processed_tables], partition_key=month)
    assert ticks.requested() == {}

    # The late-records sensor or a backfill re-materializes a day in each of two months: a
    # crashes day in February, a persons day in April. Only the tables built from them follow:
    # every table reads crashes (persons and vehicles carry the crash's place), only processed
    # crashes and persons read persons.
    run([crashes], partition_key="2024-02-10")
    run([persons], partition_key="2024-04-20")
    assert ticks.requested() == {
        "processed/crashes": {"2024-02", "2024-04"},
        "processed/persons": {"2024-02", "2024-04"},
        "processed/vehicles": {"2024-02"},
    }
    assert ticks.requested() == {}


def test_a_month_with_raw_days_missing_waits_for_them(both_layers) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance)
    ticks.requested()
    result = dg.materialize(
        collision_assets,
        resources=both_layers,
        instance=instance,
        tags=_range("2024-03-01", "2024-03-30"),
    )
    assert result.success
    assert ticks.requested() == {}  # March 31 is missing: its run would refuse to write
    result = dg.materialize(
        collision_assets, resources=both_layers, instance=instance, partition_key="2024-03-31"
    )
    assert result.success
    assert ticks.requested() == {key.to_user_string(): {"2024-03"} for key in PROCESSED}
