"""dlt as a peer: a window of crashes landed as Parquet by a dlt pipeline, run as its own process.

    python benchmarks/dlt_peer.py rest_api|arrow --domain URL --start D --end D --out DIR

`rest_api` is the config a dlt user writes for Socrata: one `rest_api` resource on
/resource/h9gi-nx95.json, an offset paginator on `$offset`/`$limit` (50,000 rows a page),
`$order` on the unique key, `parallelized`, and the `filesystem` destination writing Parquet
under DIR. `arrow` is the fastest dlt pipeline found: the window cut into 8 date windows, each a
`parallelized` resource that pages the same way through CSV and yields each page as an Arrow
table, which dlt writes as Parquet without touching a row in Python. Each prints one JSON line:
{"rows": loaded as dlt counts them, "requests", "table": the folder of the crashes files}.
"""

import argparse
import io
import itertools
import json
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.csv as pa_csv
from dlt.sources.helpers import requests as dlt_requests
from dlt.sources.rest_api import rest_api_source

CRASHES = "h9gi-nx95"
PAGE = 50_000
# As many windows, and so requests in flight, as the modelled server serves at once.
WINDOWS = 8
DATASET, TABLE = "nyc", "crashes"
TIMEOUT_SECONDS = 300

# Responses received. rest_api deep-copies its config; a function is copied as itself, so every
# resource counts here (next() on a count is atomic under the GIL).
_answered = itertools.count()


def count_response(response: Any, *args: Any, **kwargs: Any) -> None:
    next(_answered)


def window_where(start: date, end: date) -> str:
    return f"crash_date >= '{start}T00:00:00' AND crash_date < '{end}T00:00:00'"


def windows(start: date, end: date, count: int) -> list[tuple[date, date]]:
    """At most `count` windows of whole days covering [start, end)."""
    days = (end - start).days
    cuts = [start + timedelta(days=days * i // count) for i in range(count + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if a < b]


def rest_api(domain: str, start: date, end: date) -> Any:
    return rest_api_source(
        {
            "client": {
                "base_url": f"{domain}/resource/",
                # Socrata's JSON is a bare list with no total: paging stops at the first empty page.
                "paginator": {
                    "type": "offset",
                    "limit": PAGE,
                    "offset_param": "$offset",
                    "limit_param": "$limit",
                    "total_path": None,
                },
            },
            "resources": [
                {
                    "name": TABLE,
                    "parallelized": True,
                    "endpoint": {
                        "path": f"{CRASHES}.json",
                        # Offset paging needs an order on a unique key: Socrata's unordered results
                        # come back in an unstable order, and pages would overlap and skip rows.
                        "params": {"$where": window_where(start, end), "$order": "collision_id"},
                        "response_actions": [count_response],
                    },
                }
            ],
        }
    )


def csv_pages(domain: str, start: date, end: date) -> Iterator[pa.Table]:
    """One window's offset pages, as CSV parsed by pyarrow, through dlt's retrying requests."""
    params = {"$where": window_where(start, end), "$order": "collision_id", "$limit": PAGE}
    for offset in itertools.count(0, PAGE):
        response = dlt_requests.get(
            f"{domain}/resource/{CRASHES}.csv",
            params={**params, "$offset": offset},
            timeout=TIMEOUT_SECONDS,
        )
        count_response(response)
        page = pa_csv.read_csv(io.BytesIO(response.content))
        if page.num_rows:
            yield page
        if page.num_rows < PAGE:
            return


def arrow(domain: str, start: date, end: date) -> list[Any]:
    return [
        dlt.resource(
            csv_pages(domain, a, b), name=f"{TABLE}_{i}", table_name=TABLE, parallelized=True
        )
        for i, (a, b) in enumerate(windows(start, end, WINDOWS))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["rest_api", "arrow"])
    parser.add_argument("--domain", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="exclusive")
    parser.add_argument("--out", type=Path, required=True, help="the pipeline's folder")
    args = parser.parse_args()
    # No run waits on the network for telemetry; extraction runs every window at once (dlt's
    # default is 5 workers).
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ.setdefault("EXTRACT__WORKERS", str(WINDOWS))
    lake = args.out / "lake"
    pipeline = dlt.pipeline(
        pipeline_name=TABLE,
        pipelines_dir=str(args.out / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=str(lake)),
        dataset_name=DATASET,
    )
    source = (rest_api if args.mode == "rest_api" else arrow)(args.domain, args.start, args.end)
    pipeline.run(source, loader_file_format="parquet")
    rows = pipeline.last_trace.last_normalize_info.row_counts.get(TABLE, 0)
    print(
        json.dumps(
            {"rows": rows, "requests": next(_answered), "table": str(lake / DATASET / TABLE)}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
