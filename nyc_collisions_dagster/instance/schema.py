"""What Dagster's event log storages look up again for every event: whether a table, or a column
of the asset keys table, is there. Once found, it stays (a migration only adds them), so these
answers are remembered; an absent one is asked again."""

from typing import Any

from sqlalchemy.engine import Connection


class RemembersSchema:
    """Mixed in before a Dagster event log storage class."""

    def has_table(self, table_name: str) -> bool:
        found: set[str] = self.__dict__.setdefault("_tables_found", set())
        if table_name not in found:
            if not super().has_table(table_name):  # type: ignore[misc]
                return False
            found.add(table_name)
        return True

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        # Reflects the table's columns: a query of the catalog for each event otherwise.
        found: set[str] = self.__dict__.setdefault("_asset_key_columns_found", set())
        if column_name not in found:
            parent: Any = super()
            if not parent._has_asset_key_col_on_connection(conn, column_name):
                return False
            found.add(column_name)
        return True
