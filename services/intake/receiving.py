"""Receiving a submission, one way for every channel (API, web form, `cpi import`).

Validate with the one function, honour the idempotency key, seal the source, put the record on
the received topic through a `Publisher`, and answer with a receipt or the problems. Tests pass
their own publisher; production uses Kafka.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer

from schemas import Channel, ReceivedSubmission, Submission, ValidationIssue
from schemas.topics import RECEIVED
from services.common.days import day_timestamp, utc_today
from services.common.envelope import RecipientKey, seal_to
from services.common.serde import encode
from services.common.settings import IntakeSettings
from services.intake.domain import issue, validate_submission
from services.intake.idempotency import IdempotencyStore, Receipt, scope_and_fingerprint
from services.intake.metrics import SUBMISSIONS, count_rejection

log = structlog.get_logger(__name__)


def received_record(submission: Submission, transport: RecipientKey) -> ReceivedSubmission:
    """The received-topic record: a fresh submission id, the day, and the whole submission sealed, bound to
    that id, to the transport public key (which opens nothing here).

    No exact time and no channel: past the edge they would link the submission to its intel."""
    submission_id = uuid.uuid4().hex
    return ReceivedSubmission(
        submission_id=submission_id,
        received_on=utc_today(),
        sealed_submission=seal_to(submission.model_dump_json().encode(), submission_id.encode(), transport),
    )


class Publisher(Protocol):
    """Where received records go: started once, then `publish` per record until `stop`."""

    async def start(self) -> None: ...

    async def publish(self, record: ReceivedSubmission) -> None: ...

    async def stop(self) -> None: ...


class KafkaPublisher:
    """Produces to the received topic with acks=all and an idempotent producer."""

    def __init__(self, settings: IntakeSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        from services.common.kafka import clients

        producer = clients.async_producer(self._settings, enable_idempotence=True)
        await producer.start()
        self._producer = producer

    async def publish(self, record: ReceivedSubmission) -> None:
        if self._producer is None:
            raise RuntimeError("publisher not started")
        # The record's timestamp is its day's midnight too, not the moment it arrived.
        await self._producer.send_and_wait(self._settings.topic(RECEIVED.name), value=encode(record),
                                           key=record.submission_id.encode(),
                                           timestamp_ms=int(day_timestamp(record.received_on) * 1000))

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


@dataclass(frozen=True)
class Answer:
    """What became of one submission: the HTTP status and a receipt or the problems."""

    status: int
    receipt: Receipt | None = None
    problems: tuple[ValidationIssue, ...] = ()
    retry_after: int | None = None
    duplicate: bool = False


def refusal(status: int, code: str, message: str, retry_after: int | None = None) -> Answer:
    """An answer with one problem about the whole request."""
    return Answer(status=status, problems=(issue((), code, message),), retry_after=retry_after)


@dataclass(frozen=True)
class Intake:
    """Everything receiving needs: the public key that seals submissions, where records go, the idempotency table."""

    transport_key: RecipientKey
    publisher: Publisher
    idempotency: IdempotencyStore
    secret: bytes

    async def receive(self, data: object, channel: Channel, principal: str) -> Answer:
        """Validate, then publish once per idempotency key of `principal` (who the edge knows sent it, see
        `scope_and_fingerprint`): 202 with a receipt, or 4xx/503 with problems."""
        validation = validate_submission(data)
        if validation.submission is None:
            SUBMISSIONS.labels(channel.value, "rejected").inc()
            codes = [e.code for e in validation.errors]
            count_rejection(channel.value, codes)
            log.info("submission_rejected", channel=channel.value, codes=sorted(set(codes)))
            return Answer(status=422, problems=tuple(validation.errors))
        submission = validation.submission
        record = received_record(submission, self.transport_key)
        # The sharer's receipt keeps the exact time (it is theirs); nothing after the edge holds it.
        receipt = Receipt(receipt_id=uuid.uuid4().hex, received_at=datetime.now(UTC))
        keys = scope_and_fingerprint(submission, self.secret, principal)
        if keys is not None:
            claim = self.idempotency.claim(keys[0], keys[1], receipt)
            if claim.outcome == "duplicate" and claim.receipt is not None:
                SUBMISSIONS.labels(channel.value, "duplicate").inc()
                return Answer(status=202, receipt=claim.receipt, duplicate=True)
            if claim.outcome == "conflict":
                return refusal(409, "idempotency_conflict", "This idempotency key was already used for a "
                               "different submission. Use a new key for new information.")
            if claim.outcome == "pending":
                return refusal(409, "submission_in_progress", "A submission with this idempotency key is "
                               "still being received. Try again in a few seconds.", retry_after=5)
        try:
            await self.publisher.publish(record)
        except Exception as exc:  # the broker's trouble, not the submitter's: say so, let them retry
            if keys is not None:
                self.idempotency.release(keys[0])
            log.error("publish_failed", channel=channel.value, error=type(exc).__name__)
            return refusal(503, "unavailable", "We could not take your submission just now. Nothing was "
                           "sent. Please try again in a minute.", retry_after=30)
        if keys is not None:
            self.idempotency.complete(keys[0])
        SUBMISSIONS.labels(channel.value, "received").inc()
        log.info("submission_received", channel=channel.value)
        return Answer(status=202, receipt=receipt)
