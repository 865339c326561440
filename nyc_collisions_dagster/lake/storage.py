"""The lake's files: one Parquet file per asset and partition, on a local folder or S3.

Raw days are `{storage_url}/{asset}/{YYYY-MM-DD}.parquet`; processed months are
`{storage_url}/{asset}/year=YYYY/month=MM/{YYYY-MM}.parquet`. Local and S3 differ only in the
base URL, which filesystems.py resolves.
"""

import contextlib
import errno
import hashlib
import os
import re
import time
import uuid
from collections.abc import Sequence
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from nyc_collisions_dagster.lake.filesystems import S3_ATTEMPTS, filesystem
from nyc_collisions_dagster.listing import first_and_more

# A write's temporary: `.{name}.{32 hex}.tmp`, or `{name}.{32 hex}.tmp` as older versions named it.
_TEMPORARY = re.compile(r"^\.?.+\.[0-9a-f]{32}\.tmp$")
# No write holds its temporary for this long: one older was left by a process that died.
STALE_TEMPORARY_SECONDS = 3600.0


# Causes of a failed write that every other write would meet too: a full disk, a folder that
# cannot be written, refused credentials, a missing bucket. Past one, a range run stops; past any
# other (S3 answering 503 after the client's retries, a connection cut), it writes the other days.
_EVERY_WRITE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOTDIR,
}
_EVERY_WRITE_S3_ERRORS = ("ACCESS_DENIED", "NO_SUCH_BUCKET", "InvalidAccessKeyId", "NoSuchBucket")


class StorageError(RuntimeError):
    """A partition file could not be written or read; `every_write`: nor could any other."""

    def __init__(self, message: str, every_write: bool = False) -> None:
        super().__init__(message)
        self.every_write = every_write


class PartitionStore:
    """The files of one asset under a storage URL, one per crash day."""

    # Snappy: a day file encodes in about half the time zstd takes, for slightly larger files.
    compression = "snappy"

    def __init__(
        self,
        storage_url: str,
        asset: str,
        setting: str = "the storage URL",
        s3_attempts: int = S3_ATTEMPTS,
    ) -> None:
        """`setting` names where `storage_url` came from, for the errors that say what to fix."""
        self.asset, self.setting = asset, setting
        self.url = f"{storage_url.rstrip('/')}/{asset}"
        self.fs, root = filesystem(storage_url, s3_attempts)
        self.root = f"{root.rstrip('/')}/{asset}"
        self.is_local = isinstance(self.fs, pa_fs.LocalFileSystem)

    def ensure_writable(self) -> list[str]:
        """Fail before any fetching if the folder can't be made or the bucket isn't there; on a
        folder, sweep the temporaries that killed writes left. Returns the paths swept."""
        if self.is_local:
            try:
                self.fs.create_dir(self.root, recursive=True)
            except OSError as exc:
                raise StorageError(
                    f"Cannot create {self.url}: {exc}. Check {self.setting}."
                ) from None
            return self.sweep_temporaries()
        self.ensure_bucket()
        return []

    def sweep_temporaries(self, older_than: float = STALE_TEMPORARY_SECONDS) -> list[str]:
        """Delete the temporaries under the folder that no write can still be using: a write
        renames its temporary within seconds, so one older than `older_than` seconds was left by
        a process that died mid-write. Those of a write in progress, in this run or another
        over the same days, are younger and stay. On S3 an upload that never completed leaves no
        object (an incomplete multipart upload is not listed; a bucket's lifecycle rule aborts
        it)."""
        if not self.is_local:
            return []
        selector = pa_fs.FileSelector(self.root, recursive=True, allow_not_found=True)
        cutoff = time.time() - older_than
        swept = []
        for info in self.fs.get_file_info(selector):
            stale = info.mtime is not None and info.mtime.timestamp() < cutoff
            if info.type == pa_fs.FileType.File and stale and _TEMPORARY.match(info.base_name):
                try:
                    self.fs.delete_file(info.path)
                except FileNotFoundError:
                    continue  # swept by another run meanwhile
                swept.append(info.path)
        return swept

    def ensure_bucket(self) -> None:
        """Fail if the S3 bucket isn't there or can't be reached; a local folder passes."""
        if self.is_local:
            return
        bucket = self.root.split("/", 1)[0]
        endpoint = (
            os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or "the default AWS endpoint"
        )
        try:
            found = self.fs.get_file_info(bucket).type != pa_fs.FileType.NotFound
        except OSError as exc:
            raise StorageError(
                f"S3 bucket '{bucket}' at {endpoint} could not be reached or refused access: "
                f"{_first_line(exc)}. Check {self.setting} and the AWS credentials."
            ) from None
        if not found:
            raise StorageError(
                f"S3 bucket '{bucket}' does not exist at {endpoint}. Check {self.setting}."
            )

    def relative_path(self, partition_key: str) -> str:
        return f"{partition_key}.parquet"

    def path(self, partition_key: str) -> str:
        return f"{self.root}/{self.relative_path(partition_key)}"

    def uri(self, partition_key: str) -> str:
        return f"{self.url}/{self.relative_path(partition_key)}"

    def write(self, partition_key: str, table: pa.Table) -> str:
        """Replace the partition's file; readers see the old file or the new one, never a part.

        Returns a digest of the file's bytes: the same rows give the same file, hence the same
        digest.
        """
        buffer = pa.BufferOutputStream()
        # One row group for the whole file: readers pay one footer and one chunk per column.
        pq.write_table(
            table, buffer, compression=self.compression, row_group_size=max(table.num_rows, 1)
        )
        contents = buffer.getvalue()
        try:
            replace_whole(self.fs, self.path(partition_key), contents)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(
                f"Could not write {self.uri(partition_key)}: {exc}", _fails_every_write(exc)
            ) from None
        return _digest(contents)

    def describe(self, partition_key: str) -> tuple[int, str]:
        """A stored file's rows and digest, as `write` returned them when it wrote the file."""
        try:
            with self.fs.open_input_stream(self.path(partition_key)) as file:
                contents = file.read()
            return pq.read_metadata(pa.BufferReader(contents)).num_rows, _digest(contents)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"Could not read {self.uri(partition_key)}: {exc}") from None

    def partition_days(self) -> set[date]:
        """The days that have a file."""
        selector = pa_fs.FileSelector(self.root, allow_not_found=True)
        try:
            names = [info.base_name for info in self.fs.get_file_info(selector)]
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"Could not list {self.url}: {exc}") from None
        days = set()
        for name in names:
            try:
                days.add(date.fromisoformat(name.removesuffix(".parquet")))
            except ValueError:
                continue  # temporary files of writes in progress, or foreign files
        return days

    def read_column(self, partition_key: str, column: str) -> np.ndarray | None:
        """One column of a partition's file, or None when the file does not exist.

        A day file is small, so it is read whole: on S3 a HEAD and one GET, where a lookup, the
        footer and then the column would take four requests.
        """
        try:
            with self.fs.open_input_stream(self.path(partition_key)) as file:
                contents = file.read()
            table = pq.read_table(pa.BufferReader(contents), columns=[column])
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"Could not read {self.uri(partition_key)}: {exc}") from None
        return table[column].to_numpy()

    def read(self, partition_keys: Sequence[str]) -> pa.Table:
        return pa.concat_tables(self.read_one(key) for key in partition_keys)

    def read_one(self, partition_key: str, columns: Sequence[str] | None = None) -> pa.Table:
        try:
            return pq.read_table(self.path(partition_key), columns=columns, filesystem=self.fs)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"Could not read {self.uri(partition_key)}: {exc}") from None

    def row_count(self, partition_key: str) -> int:
        """The rows of a stored file, from its footer."""
        try:
            with self.fs.open_input_file(self.path(partition_key)) as file:
                return pq.read_metadata(file).num_rows
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"Could not read {self.uri(partition_key)}: {exc}") from None


def replace_whole(fs: pa_fs.FileSystem, path: str, contents: pa.Buffer | bytes) -> None:
    """Write `contents` to `path`: readers see the old file or the new one, never a part.

    A local file appears by rename, from a temporary beside it whose name starts with a dot:
    Hive readers, Spark, pyarrow datasets and the lake's own listings skip it, so a process
    killed mid-write leaves nothing a reader sees, and the next run over the folder sweeps it
    (PartitionStore.sweep_temporaries). An S3 object appears whole when its upload completes.
    """
    if not isinstance(fs, pa_fs.LocalFileSystem):
        with fs.open_output_stream(path) as out:
            out.write(contents)
        return
    folder, name = path.rsplit("/", 1)
    target = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    fs.create_dir(folder, recursive=True)
    try:
        with fs.open_output_stream(target) as out:
            out.write(contents)
        fs.move(target, path)
    except BaseException:
        # A full disk or a failed rename: what was written of the temporary goes, not to wait
        # for the next run's sweep.
        with contextlib.suppress(OSError):
            fs.delete_file(target)
        raise


def _fails_every_write(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _EVERY_WRITE_ERRNOS:
        return True
    return any(code in str(exc) for code in _EVERY_WRITE_S3_ERRORS)


def _digest(contents: pa.Buffer | bytes) -> str:
    return hashlib.sha256(memoryview(contents)).hexdigest()[:16]


def swept_message(store: PartitionStore, swept: Sequence[str]) -> str:
    """What a run says of the temporaries it swept."""
    names = first_and_more([path.removeprefix(f"{store.root}/") for path in swept])
    return (
        f"{store.asset}: removed {len(swept)} temporary file(s) left under {store.url} by "
        f"writes killed before they finished: {names}"
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__


class MonthStore(PartitionStore):
    """One file per crash month in Hive-style folders, which DuckDB, Spark and Athena prune by."""

    # Written once a month and read often: zstd makes smaller files than snappy, so fewer bytes
    # per query on S3, for an encoding cost paid once.
    compression = "zstd"

    def relative_path(self, partition_key: str) -> str:
        year, month = partition_key.split("-")
        return f"year={year}/month={month}/{partition_key}.parquet"
