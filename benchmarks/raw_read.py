"""The floor of a processed build: read every raw day file of the three datasets, and drop it.

    python benchmarks/raw_read.py STORAGE_URL FIRST_DAY LAST_DAY [--threads 16]

Each file is read with the call the processed build makes (`PartitionStore.read_one`), from a pool
as large as the build's, so the two differ only by what the build does besides reading. Prints
the rows read per dataset and the files read as one JSON line.
"""

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from nyc_collisions_dagster.constants import DATASETS
from nyc_collisions_dagster.lake.storage import PartitionStore

# The processed build reads 16 day files at once (processed/build.py, _READERS).
BUILD_READERS = 16


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(n)).isoformat() for n in range((last - first).days + 1)]


def read_all(url: str, keys: list[str], threads: int) -> dict[str, int]:
    """Rows per dataset. Only row counts are kept, so memory holds the files in flight."""
    stores = {name: PartitionStore(url, name) for name in DATASETS}
    with ThreadPoolExecutor(threads) as pool:
        counts = {
            name: pool.map(lambda key, s=store: s.read_one(key).num_rows, keys)
            for name, store in stores.items()
        }
        return {name: sum(rows) for name, rows in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("first", type=date.fromisoformat)
    parser.add_argument("last", type=date.fromisoformat)
    parser.add_argument("--threads", type=int, default=BUILD_READERS)
    args = parser.parse_args()
    keys = days(args.first, args.last)
    rows = read_all(args.url, keys, args.threads)
    print(json.dumps({"rows": rows, "files": len(keys) * len(rows)}))


if __name__ == "__main__":
    main()
