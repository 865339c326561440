"""A column added or dropped upstream is reported and never changes the files' schema."""

import dagster as dg
import pyarrow.parquet as pq

from nyc_collisions_dagster.raw.assets import crashes
from nyc_collisions_dagster.raw.schema import SCHEMAS
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.soda_fake.server import SchemaChange


def test_added_and_dropped_columns(make_soda_server, tmp_path) -> None:
    change = SchemaChange(added={"vehicle_type_code_6": "Sedan"}, dropped=("borough",))
    server = make_soda_server(schema_changes={"crashes": change})
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [crashes],
        resources={
            "socrata": SocrataResource(domain=server.url),
            "io_manager": ParquetIOManager(storage_url=str(tmp_path)),
        },
        partition_key="2024-01-02",
        instance=instance,
    )
    assert result.success
    table = pq.read_table(tmp_path / "crashes" / "2024-01-02.parquet")
    assert table.schema.remove_metadata() == SCHEMAS["crashes"]
    assert table.num_rows > 0 and table.column("borough").null_count == table.num_rows
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["unknown_columns"].value == ["vehicle_type_code_6"]
    assert metadata["missing_columns"].value == ["borough"]
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == 30]
    assert any("vehicle_type_code_6" in w and "not in the files" in w for w in warnings)
    assert any("borough" in w and "null in the files" in w for w in warnings)
