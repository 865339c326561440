"""The project's benchmarks, run as `python -m benchmarks NAME`; each writes its stamped results
under docs/performance/."""
