"""Putting a valid submission on the received topic: the source sealed first, one way for every channel.

The API, the web form and `cpi import` all build the record with `received_record` and hand it
to a `Publisher`; tests pass their own publisher, production uses Kafka.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import AIOKafkaProducer

from schemas import Channel, ReceivedSubmission, Submission
from schemas.topics import RECEIVED
from services.common.envelope import Keyring, seal
from services.common.serde import encode
from services.common.settings import IntakeSettings


def received_record(submission: Submission, channel: Channel, keyring: Keyring) -> ReceivedSubmission:
    """The received-topic record: a fresh submission id, the content, and the source sealed to that id."""
    submission_id = uuid.uuid4().hex
    sealed = seal(submission.source.model_dump_json().encode(), submission_id.encode(), keyring)
    return ReceivedSubmission(
        submission_id=submission_id,
        channel=channel,
        received_at=datetime.now(UTC),
        content=submission.model_dump(mode="json", exclude={"source"}),
        sealed_source=sealed,
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
        producer = AIOKafkaProducer(bootstrap_servers=self._settings.bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        self._producer = producer

    async def publish(self, record: ReceivedSubmission) -> None:
        if self._producer is None:
            raise RuntimeError("publisher not started")
        await self._producer.send_and_wait(self._settings.topic(RECEIVED.name), value=encode(record),
                                           key=record.submission_id.encode())

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
