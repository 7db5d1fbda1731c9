"""NotificationRecord: that a team was (or could not be) told about a decision; WebhookAlert: what a team's
system is sent."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Category, CpiModel, Identifier
from schemas.decision import Decision, Outcome, Priority


class Team(StrEnum):
    """The two teams of the simplest routing table, the one the single-address settings make."""

    CRIME_DESK = "crime_desk"
    SAFEGUARDING = "safeguarding"


# A team's name in the routing table (docs/alert-routing.md): lower-case letters, digits, `-` and `_`.
TeamName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
RoutingVersion = Annotated[str, Field(min_length=1, max_length=64)]


class DeliveryChannel(StrEnum):
    SMTP = "smtp"
    WEBHOOK = "webhook"
    OUTBOX = "outbox"


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"


class NotificationRecord(CpiModel):
    """cpi.notification.delivered.v1 (and the retry topic). Dates only, like the intel it is about."""

    notification_id: Identifier
    decision_id: Identifier
    intel_id: Identifier
    team: TeamName
    outcome: Outcome
    priority: Priority
    channel: DeliveryChannel
    status: DeliveryStatus
    attempts: Annotated[int, Field(ge=1, le=100)]
    delivered_on: date
    error: Annotated[str, Field(max_length=500)] | None = None
    # Added within v1 (optional, so earlier records still validate): the routing table's version that chose
    # the team, so a delivery can be traced to the table that sent it there.
    routing_version: RoutingVersion | None = None
    # Added within v1 (optional: earlier records are a draft's referrals): the decision's revision that made it,
    # and whether it withdrew an earlier referral (a reviewed revision took the team off).
    revision: Annotated[int, Field(ge=0, le=10_000)] = 0
    withdrawn: bool = False


class PendingNotification(CpiModel):
    """cpi.notification.retry.v1: a notification not delivered yet, with the decision it is about, so it
    can be tried again from the topic alone; `record` says how many attempts failed and why."""

    record: NotificationRecord
    decision: Decision
    not_before: datetime
    # When the notifier first took the decision (added within v1): delivery latency counts from here.
    first_attempt_at: datetime | None = None


class WebhookAlert(CpiModel):
    """The body of a webhook POST to a team's system (version 1), signed as docs/webhooks.md says: the
    sanitised decision summary only. Nothing in it can come from the source; the decision never held any."""

    schema_version: Literal["1"] = "1"
    notification_id: Identifier
    decision_id: Identifier
    intel_id: Identifier
    team: TeamName
    outcome: Outcome
    priority: Priority
    categories: Annotated[list[Category], Field(min_length=1, max_length=8)]
    received_on: date
    rules_version: Annotated[str, Field(min_length=1, max_length=64)]
    subject: Annotated[str, Field(min_length=1, max_length=300)]
    body: Annotated[str, Field(min_length=1, max_length=50_000)]
    # Added within v1 (optional, version 1 still): the decision's revision, and whether this withdraws an earlier
    # alert about it (the revision no longer refers it to this team).
    revision: Annotated[int, Field(ge=0, le=10_000)] = 0
    withdrawn: bool = False
