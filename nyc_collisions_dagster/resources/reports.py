"""Where the report pages go."""

import dagster as dg
from pydantic import Field

from nyc_collisions_dagster.constants import DEFAULT_REPORTS_URL, REPORTS_URL_ENV
from nyc_collisions_dagster.lake.pages import PageStore


class ReportsLocation(dg.ConfigurableResource):
    """A local folder or s3://bucket/prefix for the pages people open: the dashboard."""

    storage_url: str | None = Field(
        default=None,
        description=f"A local folder or s3://bucket/prefix. Unset: ${REPORTS_URL_ENV}, "
        f"else {DEFAULT_REPORTS_URL} under the working directory.",
    )

    @property
    def url(self) -> str:
        return self.storage_url or dg.EnvVar(REPORTS_URL_ENV).get_value() or DEFAULT_REPORTS_URL

    def pages(self) -> PageStore:
        setting = "the reports resource's storage_url" if self.storage_url else REPORTS_URL_ENV
        return PageStore(self.url, setting)
