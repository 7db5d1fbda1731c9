"""Notifier worker: decisions → crime desk and safeguarding told once each → cpi.notification.delivered.v1."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from prometheus_client import Counter

from schemas import Decision, DeliveryStatus, NotificationRecord, Team
from schemas.base import utc_today
from schemas.topics import DECIDED, DELIVERED, RETRY
from services.common.kafka.stage import (
    CpiApp,
    Handler,
    Publish,
    create_app,
    day_timestamp,
    register_stage,
    run_worker,
)
from services.common.serde import decode, encode
from services.common.settings import NotifierSettings
from services.notifier.adapters.delivery import DeliveryError, DeliveryLedger, Transport, transports_from
from services.notifier.domain import Notification, notifications_for

STAGE = "notifier"
_BACKOFF_SECONDS = (0.5, 2.0)

log = structlog.get_logger(__name__)

NOTIFICATIONS = Counter(
    "cpi_notifications_total", "Notifications by team and result (delivered, failed, duplicate_skipped).",
    ["team", "result"],
)


async def _deliver(note: Notification, transport: Transport) -> tuple[int, str | None]:
    """Try a few times; return the attempts made and the last error, if every attempt failed."""
    error = None
    for attempt, pause in enumerate((*_BACKOFF_SECONDS, None), start=1):
        try:
            await asyncio.to_thread(transport.deliver, note)
            return attempt, None
        except DeliveryError as exc:
            error = str(exc)
            log.warning("delivery_failed", notification_id=note.notification_id, team=note.team.value,
                        attempt=attempt, error=error)
            if pause is not None:
                await asyncio.sleep(pause)
    return len(_BACKOFF_SECONDS) + 1, error


def make_handler(transports: dict[Team, Transport], ledger: DeliveryLedger) -> Handler:
    async def handle(value: bytes) -> Sequence[Publish]:
        decision = decode(Decision, value)
        records = []
        for note in notifications_for(decision):
            if await asyncio.to_thread(ledger.delivered, note.notification_id):
                NOTIFICATIONS.labels(note.team.value, "duplicate_skipped").inc()
                continue  # a redelivered decision: this team has been told already
            transport = transports[note.team]
            attempts, error = await _deliver(note, transport)
            if error is None:
                await asyncio.to_thread(ledger.record, note.notification_id, transport.channel)
            NOTIFICATIONS.labels(note.team.value, "delivered" if error is None else "failed").inc()
            record = NotificationRecord(
                notification_id=note.notification_id, decision_id=decision.decision_id,
                intel_id=decision.intel_id, team=note.team, outcome=note.outcome, priority=decision.priority,
                channel=transport.channel,
                status=DeliveryStatus.DELIVERED if error is None else DeliveryStatus.FAILED,
                attempts=attempts, delivered_on=utc_today(), error=error,
            )
            records.append(Publish(topic=DELIVERED if error is None else RETRY,
                                   key=decision.intel_id.encode(), value=encode(record),
                                   timestamp=day_timestamp()))
        return records

    return handle


def build(settings: NotifierSettings) -> CpiApp:
    app = create_app(STAGE, settings)
    ledger = DeliveryLedger(settings.data_dir / "notifier" / "ledger.db")
    register_stage(app, settings, stage=STAGE, source=DECIDED, handler=make_handler(transports_from(settings), ledger))
    return app


def main() -> None:
    settings = NotifierSettings()
    run_worker(build(settings), settings)
