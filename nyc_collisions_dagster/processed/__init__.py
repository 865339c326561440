"""The processed layer: analysis-ready monthly tables built from the raw days."""
