"""The summary tier's file: `{processed_url}/summaries/summary/summary.parquet`, one small file for
the whole history, with the versions of the processed months it was made from in its footer."""

import json
import re

import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from nyc_collisions_dagster.lake.storage import MonthStore, PartitionStore, StorageError

SUMMARY = "summary"
_VERSIONS_KEY = b"nyc_collisions_dagster.month_versions"
_MONTH_FILE = re.compile(r"(\d{4}-\d{2})\.parquet")


class SummaryStore:
    """The summary file, written as atomically as the lake's other files."""

    def __init__(self, processed_url: str, setting: str = "the storage URL") -> None:
        self._store = PartitionStore(f"{processed_url.rstrip('/')}/summaries", SUMMARY, setting)
        self.url = self._store.uri(SUMMARY)

    @property
    def folder(self) -> PartitionStore:
        """The table's folder, which readers and catalogs point at."""
        return self._store

    def read(self) -> tuple[pa.Table | None, dict[str, str]]:
        """The summary and the month versions it was made from; (None, {}) before the first."""
        try:
            with self._store.fs.open_input_stream(self._store.path(SUMMARY)) as file:
                contents = file.read()
            table = pq.read_table(pa.BufferReader(contents))
        except FileNotFoundError:
            return None, {}
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"Could not read {self.url}: {exc}") from None
        metadata = table.schema.metadata or {}
        versions = json.loads(metadata.get(_VERSIONS_KEY, b"{}"))
        return table.replace_schema_metadata(None), versions

    def write(self, table: pa.Table, versions: dict[str, str]) -> str:
        """Replace the summary, recording the month versions it was made from."""
        metadata = {_VERSIONS_KEY: json.dumps(versions, sort_keys=True).encode()}
        return self._store.write(SUMMARY, table.replace_schema_metadata(metadata))


def month_versions(store: MonthStore) -> dict[str, str]:
    """Each month with a file, and a version of it that changes whenever the file is replaced:
    its size and modification time, from one listing (one request per 1,000 months on S3)."""
    selector = pa_fs.FileSelector(store.root, recursive=True, allow_not_found=True)
    try:
        infos = store.fs.get_file_info(selector)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"Could not list {store.url}: {exc}") from None
    versions = {}
    for info in infos:
        match = _MONTH_FILE.fullmatch(info.base_name)
        if match and info.type == pa_fs.FileType.File and info.path == store.path(match[1]):
            versions[match[1]] = f"{info.size}:{info.mtime_ns}"
    return versions
