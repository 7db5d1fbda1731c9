"""The audit topic (cpi.audit.sealed.v1): where every sealed-store audit entry is anchored outside the database.

The unseal path appends each entry and waits for the broker's acknowledgement (acks=all, idempotent) before
the store commits it; the auditor reads the whole topic back to compare with the database. The topic has one
partition, so its order is the chain's.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

from schemas import AuditEntry
from schemas.topics import AUDIT
from services.common.errors import DecodeError
from services.common.kafka.reading import read_to_end
from services.common.serde import decode, encode
from services.common.settings import PlatformSettings
from services.sanitiser.adapters.sealed_store import AuditUnavailable

log = structlog.get_logger(__name__)

# How long one append may take before the action it records is refused (the producer retries within it).
APPEND_TIMEOUT_SECONDS = 30.0


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class KafkaAuditAnchor:
    """Appends audit entries to the audit topic, one at a time, each acknowledged before `append` returns.

    The producer is made on first use and again after a failure, so a process that started while Kafka was
    away anchors once it is back; until then every append raises AuditUnavailable."""

    def __init__(self, settings: PlatformSettings) -> None:
        self._settings = settings
        self._topic = settings.topic(AUDIT.name)
        self._producer: Any = None
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry) -> None:
        from kafka.errors import KafkaError

        from services.common.kafka import clients

        with self._lock:
            try:
                if self._producer is None:
                    # The producer gives up on a record before `append` does, so an entry refused here is
                    # not delivered later behind the caller's back.
                    self._producer = clients.producer(self._settings, enable_idempotence=True,
                                                      max_block_ms=_ms(APPEND_TIMEOUT_SECONDS),
                                                      request_timeout_ms=_ms(APPEND_TIMEOUT_SECONDS / 3),
                                                      delivery_timeout_ms=_ms(APPEND_TIMEOUT_SECONDS * 0.8))
                self._producer.send(self._topic, key=str(entry.seq).encode(), value=encode(entry)).get(
                    timeout=APPEND_TIMEOUT_SECONDS)
            except KafkaError as exc:
                self._drop_producer()
                # The error's class only: its message may name the broker's address, nothing more useful.
                log.error("audit_anchor_unavailable", seq=entry.seq, error=type(exc).__name__)
                raise AuditUnavailable(f"the audit topic did not take the entry ({type(exc).__name__}); "
                                       "nothing was done") from None

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            finally:
                self._producer = None

    def close(self) -> None:
        with self._lock:
            self._drop_producer()


def read_anchored(settings: PlatformSettings) -> list[AuditEntry | DecodeError]:
    """Every record on the audit topic, in order: an entry, or the DecodeError of a record that is not one
    (which audit-verify reports; it is never skipped silently)."""
    consumer, records = read_to_end(settings, settings.topic(AUDIT.name))
    consumer.close()
    read: list[AuditEntry | DecodeError] = []
    for record in records:
        try:
            read.append(decode(AuditEntry, record.value))
        except DecodeError as exc:
            read.append(exc)
    return read
