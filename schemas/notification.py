"""NotificationRecord: that a team was (or could not be) told about a decision."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from schemas.base import CpiModel, Identifier
from schemas.decision import Decision, Outcome, Priority


class Team(StrEnum):
    CRIME_DESK = "crime_desk"
    SAFEGUARDING = "safeguarding"


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
    team: Team
    outcome: Outcome
    priority: Priority
    channel: DeliveryChannel
    status: DeliveryStatus
    attempts: Annotated[int, Field(ge=1, le=100)]
    delivered_on: date
    error: Annotated[str, Field(max_length=500)] | None = None


class PendingNotification(CpiModel):
    """cpi.notification.retry.v1: a notification not delivered yet, with the decision it is about, so it
    can be tried again from the topic alone; `record` says how many attempts failed and why."""

    record: NotificationRecord
    decision: Decision
    not_before: datetime
