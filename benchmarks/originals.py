"""The ingestion guide's two original methods and the wire floor, each run as its own process.

    python benchmarks/originals.py brute|threaded --domain URL --start D --end D --key KEY
    python benchmarks/originals.py wire --domain URL --start D --end D [--format csv|json]
        [--datasets ID,ID,...]

`brute` and `threaded` re-implement the guide faithfully: 5,000-row JSON pages through sodapy
ordered by collision_id and paged by $offset, all rows decoded into one list, one pandas
DataFrame, one CSV uploaded with boto3 `put_object` (bucket and AWS settings from the
environment). `wire` is the floor of the transfer alone: 50,000-row pages in stored order from
8 threads, bytes counted and dropped, of crashes or of several datasets (all their pages from the
same 8 threads). Each mode prints one JSON line: {"rows", "requests"}.
"""

import argparse
import io
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import boto3
import pandas as pd
import requests
import sodapy
from requests.adapters import HTTPAdapter

CRASHES = "h9gi-nx95"
# The stored order of each dataset: crash day, then its unique key.
ORDERS = {
    CRASHES: "crash_date,collision_id",
    "f55k-p6yu": "crash_date,unique_id",
    "bm4k-52h4": "crash_date,unique_id",
}
BUCKET = "nyc-application-collisions"
GUIDE_PAGE = 5_000
WIRE_PAGE = 50_000
WIRE_THREADS = 8
# The guide kept sodapy's 10 s default; a loaded test server may exceed it, and a time-out
# would measure nothing, so it is raised. It changes no request.
TIMEOUT_SECONDS = 300


class Counter:
    """Requests issued, counted by the client itself (the test server's CLI reports none)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


def window_where(start: date, end: date) -> str:
    return f"crash_date >= '{start}T00:00:00' AND crash_date < '{end}T00:00:00'"


def sodapy_client(domain: str) -> sodapy.Socrata:
    scheme, _, host = domain.partition("://")
    adapter = {"prefix": f"{scheme}://", "adapter": HTTPAdapter()}
    return sodapy.Socrata(host, None, session_adapter=adapter, timeout=TIMEOUT_SECONDS)


def guide_page(client: sodapy.Socrata, where: str, counter: Counter) -> Callable[[int], list]:
    def fetch(offset: int) -> list[dict]:
        counter.add()
        return client.get(
            CRASHES, where=where, order="collision_id", limit=GUIDE_PAGE, offset=offset
        )

    return fetch


def brute_force(domain: str, where: str, counter: Counter) -> list[dict]:
    """Sequential pages until a short one, as the guide's loop did."""
    fetch = guide_page(sodapy_client(domain), where, counter)
    records: list[dict] = []
    offset = 0
    while True:
        page = fetch(offset)
        records.extend(page)
        if len(page) < GUIDE_PAGE:
            return records
        offset += GUIDE_PAGE


def multithreaded(domain: str, where: str, counter: Counter) -> list[dict]:
    """A count query, then every page from a default-sized thread pool, as the guide did."""
    client = sodapy_client(domain)
    counter.add()
    total = int(client.get(CRASHES, select="count(*)", where=where)[0]["count"])
    fetch = guide_page(client, where, counter)
    with ThreadPoolExecutor() as pool:
        pages = list(pool.map(fetch, range(0, total, GUIDE_PAGE)))
    return [record for page in pages for record in page]


def upload_csv(records: list[dict], key: str) -> int:
    """One DataFrame, one CSV in memory, one PUT: the guide's upload step."""
    frame = pd.DataFrame(records)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return len(frame)


def wire(
    domain: str, where: str, fmt: str, counter: Counter, datasets: Sequence[str] = (CRASHES,)
) -> int:
    """Every row once over plain concurrent GETs; returns the rows seen, nothing is kept."""
    session = requests.Session()
    session.mount(domain, HTTPAdapter(pool_maxsize=WIRE_THREADS))

    def total(dataset: str) -> int:
        counter.add()
        count = session.get(
            f"{domain}/resource/{dataset}.json",
            params={"$select": "count(*)", "$where": where},
            timeout=TIMEOUT_SECONDS,
        )
        return int(count.json()[0]["count"])

    def fetch(dataset: str, offset: int) -> int:
        counter.add()
        params = {
            "$where": where,
            "$order": ORDERS[dataset],
            "$limit": str(WIRE_PAGE),
            "$offset": str(offset),
        }
        with session.get(
            f"{domain}/resource/{dataset}.{fmt}",
            params=params,
            stream=True,
            timeout=TIMEOUT_SECONDS,
        ) as response:
            response.raise_for_status()
            lines = sum(chunk.count(b"\n") for chunk in response.iter_content(1 << 20))
        # A CSV body has a header line; a JSON body one line per row.
        return lines - 1 if fmt == "csv" else lines

    pages = [
        (dataset, offset) for dataset in datasets for offset in range(0, total(dataset), WIRE_PAGE)
    ]
    with ThreadPoolExecutor(WIRE_THREADS) as pool:
        return sum(pool.map(lambda page: fetch(*page), pages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["brute", "threaded", "wire"])
    parser.add_argument("--domain", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="exclusive")
    parser.add_argument("--key", help="S3 key of the CSV (brute, threaded)")
    parser.add_argument("--format", default="csv", choices=["csv", "json"], help="wire only")
    parser.add_argument(
        "--datasets", default=CRASHES, help="wire only: dataset ids, comma-separated"
    )
    args = parser.parse_args()
    where, counter = window_where(args.start, args.end), Counter()
    if args.mode == "wire":
        rows = wire(args.domain, where, args.format, counter, args.datasets.split(","))
    else:
        fetch_all = brute_force if args.mode == "brute" else multithreaded
        rows = upload_csv(fetch_all(args.domain, where, counter), args.key)
    print(json.dumps({"rows": rows, "requests": counter.value}), flush=True)


if __name__ == "__main__":
    main()
