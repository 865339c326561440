"""The raw layer: Socrata rows landed as one typed Parquet file per dataset and crash day."""
