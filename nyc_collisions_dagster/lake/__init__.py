"""The lake: both layers' file layout and atomic writes (storage, writer), and what reads it from
outside Dagster: the SQL command (query, `python -m nyc_collisions_dagster.lake`) and the Hive
DDL (catalog)."""
