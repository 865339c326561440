"""The Socrata resource: the client's settings from Dagster config and the environment."""

import logging

import dagster as dg
from pydantic import Field

from nyc_collisions_dagster.constants import (
    DEFAULT_SOCRATA_DOMAIN,
    SOCRATA_API_ENV,
    SOCRATA_APP_TOKEN_ENV,
    SOCRATA_DOMAIN_ENV,
)
from nyc_collisions_dagster.socrata.client import SocrataClient
from nyc_collisions_dagster.socrata.settings import SocrataSettings


class SocrataResource(dg.ConfigurableResource):
    """NYC Open Data's Socrata API, read through a retrying sodapy session, on SODA 2.1 or SODA3.

    `domain`, `app_token` and `api` fall back to SOCRATA_DOMAIN, SOCRATA_APP_TOKEN and
    SOCRATA_API at run time, so an unset variable means the default rather than an error.
    """

    domain: str | None = Field(
        default=None,
        description=f"Socrata host, optionally with a scheme (http://127.0.0.1:8123). "
        f"Unset: ${SOCRATA_DOMAIN_ENV}, else {DEFAULT_SOCRATA_DOMAIN}.",
    )
    app_token: str | None = Field(
        default=None,
        description=f"Sent as X-App-Token for higher rate limits; SODA3 requires one. "
        f"Unset: ${SOCRATA_APP_TOKEN_ENV}.",
    )
    api: str | None = Field(
        default=None,
        description="auto: SODA 2.1 while /resource/ answers, then SODA3 for the rest of the run; "
        f"soda2 or soda3 pins one. Unset: ${SOCRATA_API_ENV}, else auto.",
    )
    page_size: int = Field(default=50_000, gt=0, description="Rows per request ($limit).")
    max_workers: int = Field(
        default=8,
        gt=0,
        description="Requests in flight at once: 1 fetches pages one after another.",
    )
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = Field(
        default=120.0, description="Longest wait for the next bytes of a response."
    )
    max_retries: int = Field(default=6, ge=0, description="Retries per request before failing.")
    backoff_factor: float = 0.5
    max_backoff_seconds: float = 30.0

    def settings(self) -> SocrataSettings:
        """The client's settings, unset fields read from the environment now, at run time."""
        return SocrataSettings(
            domain=self.domain
            or dg.EnvVar(SOCRATA_DOMAIN_ENV).get_value()
            or DEFAULT_SOCRATA_DOMAIN,
            app_token=self.app_token or dg.EnvVar(SOCRATA_APP_TOKEN_ENV).get_value() or None,
            api=self.api or dg.EnvVar(SOCRATA_API_ENV).get_value() or "auto",
            page_size=self.page_size,
            max_workers=self.max_workers,
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            max_backoff_seconds=self.max_backoff_seconds,
        )

    def get_client(self, log: logging.Logger | None = None) -> SocrataClient:
        """A client for one step or tick; `log` is told if it moves from SODA 2.1 to SODA3."""
        return SocrataClient(self.settings(), log)
