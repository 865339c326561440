"""Plain values shared by the package: the datasets, where history starts, names shown in the UI."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    """One Socrata dataset landed as one asset."""

    asset: str
    dataset_id: str
    unique_key: str
    title: str

    @property
    def url(self) -> str:
        return f"https://data.cityofnewyork.us/d/{self.dataset_id}"


DATASETS: dict[str, Dataset] = {
    d.asset: d
    for d in (
        Dataset("crashes", "h9gi-nx95", "collision_id", "Motor Vehicle Collisions - Crashes"),
        Dataset("persons", "f55k-p6yu", "unique_id", "Motor Vehicle Collisions - Person"),
        Dataset("vehicles", "bm4k-52h4", "unique_id", "Motor Vehicle Collisions - Vehicles"),
    )
}

START_DATE = "2012-07-01"
# Persons and vehicles rows are sparse before this month upstream: only crashes cover 2012-2016.
DETAIL_START_MONTH = "2016-04"
TIMEZONE = "America/New_York"
RAW_GROUP_NAME = "collisions_raw_data"
PROCESSED_GROUP_NAME = "collisions_processed_data"
REPORTS_GROUP_NAME = "collisions_reports"
PROCESSED_PREFIX = "processed"
POOL = "socrata_api"
OWNERS = ["team:data-engineering"]

DEFAULT_SOCRATA_DOMAIN = "data.cityofnewyork.us"
DEFAULT_STORAGE_URL = "data/collisions_raw_data"
SOCRATA_DOMAIN_ENV = "SOCRATA_DOMAIN"
SOCRATA_APP_TOKEN_ENV = "SOCRATA_APP_TOKEN"
SOCRATA_API_ENV = "SOCRATA_API"
STORAGE_URL_ENV = "COLLISIONS_STORAGE_URL"
DEFAULT_PROCESSED_URL = "data/collisions_processed_data"
PROCESSED_URL_ENV = "COLLISIONS_PROCESSED_URL"
DEFAULT_REPORTS_URL = "data/collisions_reports"
REPORTS_URL_ENV = "COLLISIONS_REPORTS_URL"
