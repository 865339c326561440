"""Report pages beside the lake: `{reports_url}/{name}`, on a local folder or S3, each written as
atomically as the lake's files, so a reader sees the old page or the new one, never a part."""

import pyarrow as pa

from nyc_collisions_dagster.lake.filesystems import filesystem
from nyc_collisions_dagster.lake.storage import StorageError, replace_whole


class PageStore:
    """The report pages under one URL."""

    def __init__(self, reports_url: str, setting: str = "the reports URL") -> None:
        self.url, self.setting = reports_url.rstrip("/"), setting
        self.fs, root = filesystem(reports_url)
        self.root = root.rstrip("/")

    def uri(self, name: str) -> str:
        return f"{self.url}/{name}"

    def write(self, name: str, contents: bytes) -> str:
        """Replace the page `name`; its URI."""
        try:
            replace_whole(self.fs, f"{self.root}/{name}", contents)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(
                f"Could not write {self.uri(name)}: {exc}. Check {self.setting}."
            ) from None
        return self.uri(name)
