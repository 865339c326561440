"""Run a command; write its wall seconds and its own peak RSS to a JSON file; exit as it did.

    python benchmarks/peak_rss.py REPORT.json CMD [ARG...]

Linux carries a process's peak RSS across exec, so a child spawned straight from the benchmark
(which holds dagster, pyarrow and boto3) would report at least the benchmark's own size. Spawned
from this small process instead, its peak RSS is its own (with its waited-for descendants').
"""

import json
import os
import sys
import time


def main() -> int:
    report, cmd = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    with open(report, "w") as out:
        json.dump({"wall": wall, "peak_rss_kib": usage.ru_maxrss}, out)  # KiB on Linux
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
