"""Notifier worker: decisions → every team the routing table picks, told once each → cpi.notification.delivered.v1.

A delivery that fails waits on cpi.notification.retry.v1 (with its decision, so nothing else is
needed to try again) and is retried with growing pauses; after `max_attempts` it is dead-lettered,
from where `cpi dlq replay` sends it back once the team's mail server or webhook is mended.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter, Histogram

from schemas import Decision, DeliveryChannel, DeliveryStatus, NotificationRecord, PendingNotification
from schemas.base import utc_today
from schemas.topics import DECIDED, DELIVERED, RETRY
from services.common.days import day_timestamp
from services.common.errors import CpiError, DecodeError, TransientError
from services.common.kafka.stage import (
    BatchHandler,
    CpiApp,
    Handler,
    Outcome,
    Publish,
    create_app,
    one_at_a_time,
    register_stage,
    run_worker,
)
from services.common.serde import decode, encode
from services.common.settings import NotifierSettings
from services.notifier.adapters.delivery import DeliveryError, Transport, routing_from, transports_from
from services.notifier.adapters.ledger import DeliveryLedger, State, open_ledger
from services.notifier.domain import Notification, RoutingTable, notifications_for, route

STAGE = "notifier"
RETRY_STAGE = "notifier-retry"
_LONGEST_PAUSE = timedelta(minutes=15)
_LONGEST_HOLD = timedelta(seconds=20)

log = structlog.get_logger(__name__)

NOTIFICATIONS = Counter(
    "cpi_notifications_total",
    "Notifications by team, channel and result (delivered, failed, retry_scheduled, duplicate_skipped,"
    " claimed_elsewhere).",
    ["team", "channel", "result"],
)
UNMATCHED = Counter(
    "cpi_notifier_unmatched_decisions_total",
    "Decisions for crime desk or safeguarding that no team's conditions matched, sent to the default team.",
)
DELIVERY_SECONDS = Histogram(
    "cpi_notification_delivery_seconds",
    "From the notifier taking a decision to its notification delivered, retries included, by team and channel.",
    ["team", "channel"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0),
)


# Test-only fault hook (tests/reliability): "<point>:<n>" SIGKILLs this process the n-th time it reaches <point>
# ("sent": the team told, the ledger not yet; "ledger": the ledger says sent, the record not yet published).
FAULT_ENV = "CPI_TEST_KILL_AT"
_reached: dict[str, int] = {}


def fault_point(point: str) -> None:
    wanted, _, nth = os.environ.get(FAULT_ENV, "").partition(":")
    if wanted != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] == int(nth or 1):
        log.warning("test_fault_kill", point=point)
        os.kill(os.getpid(), signal.SIGKILL)


class NotificationUndeliverable(CpiError):
    """Every attempt to tell a team failed; the pending notification is dead-lettered for replay."""


class Notifier:
    """Delivers each notification once, and schedules or gives up on the ones that fail."""

    def __init__(self, transports: dict[str, Transport], ledger: DeliveryLedger, settings: NotifierSettings,
                 table: RoutingTable | None = None) -> None:
        self._transports = transports
        self._ledger = ledger
        self._settings = settings
        self._table = table or routing_from(settings)

    async def attempt(self, note: Notification, decision: Decision, failed_before: int,
                      first_attempt_at: datetime | None = None) -> list[Publish]:
        """One delivery attempt: claim, send, keep the record, publish it (see adapters/ledger.py for the
        states). Returns a delivered record, a retry scheduled, nothing (already recorded), or raises when out
        of attempts."""
        transport = self._transports[note.channel.kind]
        channel = transport.channel.value
        started = first_attempt_at or datetime.now(UTC)
        entry = await asyncio.to_thread(self._ledger.claim, note.notification_id, transport.channel)
        if entry.state is State.RECORDED:
            NOTIFICATIONS.labels(note.team, channel, "duplicate_skipped").inc()
            return []
        if entry.state is State.SENT:
            # Told already, its record not yet acknowledged (a crash in between, or another replica still
            # publishing): publish the record kept in the ledger, the very bytes, and send nothing.
            NOTIFICATIONS.labels(note.team, channel, "duplicate_skipped").inc()
            value = entry.record or encode(self._record(note, decision, entry.channel, failed_before + 1,
                                                        DeliveryStatus.DELIVERED, None))
            return [self._delivered(note, decision, value)]
        if not entry.mine:
            # Another notifier is sending it now (or died doing so): look again once its lease has run out;
            # by then it is sent, or the claim is free. Not a failed attempt, so not counted as one.
            NOTIFICATIONS.labels(note.team, channel, "claimed_elsewhere").inc()
            record = self._record(note, decision, transport.channel, max(failed_before, 1), DeliveryStatus.FAILED,
                                  "another notifier holds the claim to send it")
            due = datetime.fromtimestamp(entry.lease_until or 0, UTC) + timedelta(seconds=1)
            return [self._pending(record, decision, max(due, datetime.now(UTC)), started)]
        attempts = failed_before + 1
        log.info("notification_sending", notification_id=note.notification_id, team=note.team)
        try:
            await asyncio.to_thread(transport.deliver, note)
        except DeliveryError as exc:
            await asyncio.to_thread(self._ledger.release, note.notification_id)
            NOTIFICATIONS.labels(note.team, channel, "failed").inc()
            log.warning("delivery_failed", notification_id=note.notification_id, team=note.team,
                        attempt=attempts, error=str(exc))
            if attempts >= self._settings.max_attempts:
                raise NotificationUndeliverable(
                    f"{note.team} could not be told after {attempts} attempts: {exc}") from None
            record = self._record(note, decision, transport.channel, attempts, DeliveryStatus.FAILED, str(exc))
            pause = min(timedelta(seconds=self._settings.retry_after_seconds * 2 ** (attempts - 1)), _LONGEST_PAUSE)
            NOTIFICATIONS.labels(note.team, channel, "retry_scheduled").inc()
            return [self._pending(record, decision, datetime.now(UTC) + pause, started)]
        fault_point("sent")  # the documented window: told, and the ledger does not know yet
        value = encode(self._record(note, decision, transport.channel, attempts, DeliveryStatus.DELIVERED, None))
        if not await asyncio.to_thread(self._ledger.sent, note.notification_id, value):
            log.warning("delivery_claim_lapsed", notification_id=note.notification_id, team=note.team)
        log.info("notification_sent", notification_id=note.notification_id, team=note.team)
        NOTIFICATIONS.labels(note.team, channel, "delivered").inc()
        DELIVERY_SECONDS.labels(note.team, channel).observe((datetime.now(UTC) - started).total_seconds())
        fault_point("ledger")  # sent and in the ledger, its record not yet published
        return [self._delivered(note, decision, value)]

    def _delivered(self, note: Notification, decision: Decision, value: bytes) -> Publish:
        """The delivered record, marked `recorded` in the ledger once the broker has acknowledged it."""
        notification_id = note.notification_id

        async def recorded() -> None:
            await asyncio.to_thread(self._ledger.recorded, notification_id)

        day = NotificationRecord.model_validate_json(value).delivered_on
        return Publish(topic=DELIVERED, key=decision.intel_id.encode(), value=value, timestamp=day_timestamp(day),
                       on_acked=recorded)

    @staticmethod
    def _pending(record: NotificationRecord, decision: Decision, not_before: datetime,
                 first_attempt_at: datetime) -> Publish:
        pending = PendingNotification(record=record, decision=decision, not_before=not_before,
                                      first_attempt_at=first_attempt_at)
        return Publish(topic=RETRY, key=decision.intel_id.encode(), value=encode(pending), timestamp=day_timestamp())

    @staticmethod
    def _record(note: Notification, decision: Decision, channel: DeliveryChannel, attempts: int,
                status: DeliveryStatus, error: str | None) -> NotificationRecord:
        return NotificationRecord(
            notification_id=note.notification_id, decision_id=decision.decision_id, intel_id=decision.intel_id,
            team=note.team, outcome=note.outcome, priority=decision.priority, channel=channel,
            status=status, attempts=attempts, delivered_on=utc_today(), error=error,
            routing_version=note.routing_version, revision=note.revision, withdrawn=note.withdrawn,
        )

    def decisions_handler(self) -> Handler:
        """One decision at a time: the batch handler on a batch of one."""
        return one_at_a_time(self.decisions_batch_handler())

    def decisions_batch_handler(self) -> BatchHandler:
        """A batch of decisions told concurrently, at most `delivery_concurrency` at a time; decisions about one
        intel (its revisions, same key) one after another in their order. Each decision's outcome is its own (a
        bad one is dead-lettered alone), except a TransientError: raised for the batch once every other
        decision is done, so the stage retries the batch, and the ledger sends nothing twice."""

        async def handle(values: Sequence[bytes]) -> list[Outcome]:
            outcomes: list[Outcome] = [[] for _ in values]
            by_intel: dict[str, list[tuple[int, Decision]]] = {}
            for index, value in enumerate(values):
                try:
                    decision = decode(Decision, value)
                except DecodeError as exc:
                    outcomes[index] = exc
                    continue
                by_intel.setdefault(decision.intel_id, []).append((index, decision))
            bound = asyncio.Semaphore(self._settings.delivery_concurrency)

            async def in_order(decisions: list[tuple[int, Decision]]) -> None:
                for index, decision in decisions:
                    async with bound:
                        try:
                            outcomes[index] = await self._told(decision)
                        except TransientError:
                            raise
                        except Exception as exc:
                            outcomes[index] = exc

            failures = await asyncio.gather(*(in_order(group) for group in by_intel.values()), return_exceptions=True)
            for failure in failures:
                if isinstance(failure, BaseException):
                    raise failure
            return outcomes

        return handle

    async def _told(self, decision: Decision) -> list[Publish]:
        """Every notification `decision` calls for, attempted."""
        taken = datetime.now(UTC)  # delivery latency counts from here, for each team's notification
        routing = route(decision, self._table)
        if routing.unmatched:  # never dropped: the default team has it, and operations can see that
            UNMATCHED.inc()
            log.warning("decision_matched_no_team", decision_id=decision.decision_id,
                        outcomes=[o.value for o in decision.outcomes], priority=decision.priority.value,
                        default_team=self._table.default_team, routing_version=self._table.version)
        return [p for note in routing.notifications for p in await self.attempt(note, decision, 0, taken)]

    def retries_handler(self) -> Handler:
        async def handle(value: bytes) -> Sequence[Publish]:
            pending = decode(PendingNotification, value)
            wait = (pending.not_before - datetime.now(UTC)).total_seconds()
            if wait > _LONGEST_HOLD.total_seconds():
                # Not due for a while: hold it briefly, then put it back at the end of the retry topic.
                # A long sleep here would hold up rebalancing (faust waits for the current event).
                await asyncio.sleep(_LONGEST_HOLD.total_seconds())
                return [Publish(topic=RETRY, key=pending.decision.intel_id.encode(), value=value,
                                timestamp=day_timestamp())]
            if wait > 0:
                await asyncio.sleep(wait)
            note = next((n for n in notifications_for(pending.decision, self._table)
                         if n.notification_id == pending.record.notification_id), None)
            if note is None:
                # The routing table changed while this waited, and no longer makes it: the decision is routed
                # again under the table as it is now (dead-lettering it would tell no one, and a replay would not
                # match either). The ledger sends nothing twice to a team the decision has reached already.
                log.warning("pending_notification_rerouted", notification_id=pending.record.notification_id,
                            decision_id=pending.decision.decision_id, routing_version=self._table.version)
                notes = route(pending.decision, self._table).notifications
                return [p for n in notes for p in await self.attempt(n, pending.decision, 0, pending.first_attempt_at)]
            return await self.attempt(note, pending.decision, pending.record.attempts, pending.first_attempt_at)

        return handle


def build(settings: NotifierSettings) -> CpiApp:
    app = create_app(STAGE, settings)
    # Unique per process: a restarted notifier waits for its predecessor's claims to lapse, like any other.
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    ledger = open_ledger(settings.delivery_ledger, owner, settings.delivery_lease_seconds)
    # A bad routing table stops the worker here, with the line named.
    notifier = Notifier(transports_from(settings), ledger, settings, routing_from(settings))
    register_stage(app, settings, stage=STAGE, source=DECIDED, batch_handler=notifier.decisions_batch_handler())
    # One at a time: a retry sleeps until it is due, and a batch would hold every other retry up behind it.
    register_stage(app, settings, stage=RETRY_STAGE, source=RETRY, handler=notifier.retries_handler(), batched=False)
    return app


def main() -> None:
    settings = NotifierSettings()
    run_worker(build(settings), settings)
