"""How the client reaches Socrata: one frozen value, built by the resource from its config."""

from dataclasses import dataclass

from nyc_collisions_dagster.constants import SOCRATA_API_ENV
from nyc_collisions_dagster.socrata.errors import SocrataError

APIS = ("auto", "soda2", "soda3")


@dataclass(frozen=True, kw_only=True)
class SocrataSettings:
    """The host, the API to speak and the limits of one client's session."""

    domain: str
    app_token: str | None = None
    api: str = "auto"
    page_size: int = 50_000
    max_workers: int = 8
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 120.0
    max_retries: int = 6
    backoff_factor: float = 0.5
    max_backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise SocrataError(
                f"The Socrata API setting ({SOCRATA_API_ENV}, or the socrata resource's api) "
                f"must be one of {', '.join(APIS)}, not {self.api!r}."
            )
