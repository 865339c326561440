"""Dagster pipeline for NYC Motor Vehicle Collisions: Socrata in, daily Parquet files out."""
