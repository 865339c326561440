"""A write killed mid-way leaves its temporary where readers do not look, and the next run over
the folder sweeps it; a temporary young enough to belong to a write in progress stays."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from nyc_collisions_dagster.lake.storage import STALE_TEMPORARY_SECONDS, MonthStore, PartitionStore

# A process writing one large file through the lake's atomic write, to be killed mid-way.
LARGE_WRITE = textwrap.dedent(
    """
    import sys
    import pyarrow.fs as pa_fs
    from nyc_collisions_dagster.lake.storage import replace_whole

    replace_whole(pa_fs.LocalFileSystem(), sys.argv[1], b"x" * (1 << 30))
    """
)


def _killed_write(folder: Path, name: str) -> Path:
    """Starts a 1 GB write of folder/name, kills it once its temporary exists; the temporary."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = subprocess.Popen([sys.executable, "-c", LARGE_WRITE, str(folder / name)])
    deadline = time.monotonic() + 60
    while not (found := [p for p in folder.iterdir() if p.name.endswith(".tmp")]):
        assert writer.poll() is None and time.monotonic() < deadline, "no temporary appeared"
        time.sleep(0.001)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert not (folder / name).exists(), "the write finished before the kill"
    [temporary] = found
    return temporary


def _age(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_a_killed_write_is_invisible_to_readers_and_swept_by_the_next_run(tmp_path: Path) -> None:
    store = PartitionStore(str(tmp_path / "lake"), "crashes")
    table = pa.table({"collision_id": [1, 2, 3]})
    store.write("2024-01-01", table)
    temporary = _killed_write(Path(store.root), "2024-01-02.parquet")

    # Hidden by its leading dot from pyarrow datasets (as from Spark and Hive), from DuckDB's
    # glob of the day files, and from the store's own listing of days.
    assert temporary.name.startswith(".")
    assert ds.dataset(store.root, format="parquet").to_table().num_rows == 3
    files = f"{store.root}/*.parquet"
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{files}')").fetchall() == [(3,)]
    assert {str(day) for day in store.partition_days()} == {"2024-01-01"}

    # Young, it may be another run's write in progress: the next run leaves it.
    assert store.ensure_writable() == []
    assert temporary.exists()
    # Older than any write takes: the next run removes it, and only it.
    _age(temporary, STALE_TEMPORARY_SECONDS + 60)
    assert store.ensure_writable() == [str(temporary)]
    assert sorted(p.name for p in Path(store.root).iterdir()) == ["2024-01-01.parquet"]
    assert pq.read_table(store.path("2024-01-01")).equals(table)


def test_processed_months_and_older_temporary_names_are_swept_too(tmp_path: Path) -> None:
    store = MonthStore(str(tmp_path / "processed"), "crashes")
    month = Path(store.path("2024-01")).parent
    temporary = _killed_write(month, "2024-01.parquet")
    # The name writes gave their temporaries before they were hidden by a dot.
    older = month / f"2024-01.parquet.{'0' * 32}.tmp"
    older.write_bytes(b"partial")
    unrelated = month / "notes.tmp"
    unrelated.write_bytes(b"someone else's")
    for path in (temporary, older, unrelated):
        _age(path, STALE_TEMPORARY_SECONDS + 60)
    assert sorted(store.ensure_writable()) == sorted([str(temporary), str(older)])
    assert sorted(p.name for p in month.iterdir()) == ["notes.tmp"]
