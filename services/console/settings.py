"""The console's settings (CPI_CONSOLE_*, CPI_OIDC_*): its own listener, the force's identity provider, sessions.

A subclass of the sanitiser's, because the console works on what the sanitiser keeps: the held topic,
the sanitised topic it releases to, and the sealed store it unseals from (with the unseal key no worker holds).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from services.common.settings import SanitiserSettings
from services.console.domain import parse_review_criteria, parse_review_targets


class ConsoleSettings(SanitiserSettings):
    console_port: int = Field(default=8090, description="The console's own listener: never the public edge's.")
    console_metrics_port: int = Field(default=9105, description="The console's /metrics, internal.")
    console_url: str | None = Field(
        default=None, description="The console's address as browsers reach it (for the sign-in redirect); "
                                  "default http://<http_host>:<console_port>.")
    oidc_issuer: str | None = Field(default=None, description="The force's OpenID Connect issuer URL.")
    oidc_client_id: str = "cpi-console"
    oidc_client_secret: SecretStr | None = None
    oidc_roles_claim: str = Field(default="roles", description="The ID token claim listing the officer's roles.")
    console_session_secret: SecretStr | None = Field(
        default=None, description="Signs the session cookie; default a random secret kept under the data dir.")
    console_session_idle_minutes: int = Field(default=15, ge=1, le=120, description="Signed out after this idle.")
    console_session_max_minutes: int = Field(default=480, ge=5, le=720, description="...and this long at most.")
    console_cookie_secure: bool = Field(default=True, description="Send the session cookie over HTTPS only.")
    held_review_target_days: int = Field(
        default=2, ge=0, le=365,
        description="Held reports should be reviewed within this many days of being held; those waiting longer are "
                    "counted as overdue on /metrics (cpi_held_overdue).")
    held_metrics_refresh_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="How often /metrics reads the held topic again for its counts.")
    recontact_approval: Literal["all", "not_supervisor"] = Field(
        default="all", description="Which re-contact requests need a supervisor's approval: all, or all but "
                                   "those a supervisor makes (never approved by the requester themself).")
    console_review_targets: str = Field(
        default="high=1h,medium=24h,low=72h",
        description="How long a decision of each priority may wait for review (PRIORITY=DURATION, comma-separated; "
                    "durations like 90m, 1h, 3d); a priority left out has no target.")
    console_review_when: str = Field(
        default="high_priority,flagged",
        description="Which decisions need review, comma-separated: all; high_priority; flagged (the router's "
                    "review flag: its second opinion's doubt or thin evidence); or a review reason code.")

    @field_validator("console_review_targets")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        parse_review_targets(value)  # its QueueConfigError (a ValueError) says what is wrong
        return value

    @field_validator("console_review_when")
    @classmethod
    def _criteria_parse(cls, value: str) -> str:
        parse_review_criteria(value)
        return value

    @property
    def review_targets(self) -> dict[str, timedelta]:
        return parse_review_targets(self.console_review_targets)

    @property
    def review_criteria(self) -> frozenset[str]:
        return parse_review_criteria(self.console_review_when)

    @property
    def console_base_url(self) -> str:
        return (self.console_url or f"http://{self.http_host}:{self.console_port}").rstrip("/")
