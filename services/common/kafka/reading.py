"""Read a topic from its start (or a group's committed position) up to the end it had when we began.

Waiting for "no more records for a while" loses records on a slow machine; end offsets do not.
"""

from __future__ import annotations

import time
from typing import Any

from services.common.errors import CpiError
from services.common.settings import PlatformSettings


class ReadTimeout(CpiError):
    """The topic's end was not reached in time."""


def read_to_end(
    settings: PlatformSettings, topic: str, *, group_id: str | None = None, timeout: float = 120.0
) -> tuple[Any, list[Any]]:
    """Every record up to the current end offsets. Returns the (open) consumer too, so a caller with a
    group can commit what it has handled; close it when done."""
    from kafka import TopicPartition

    from services.common.kafka import clients

    consumer = clients.consumer(settings, group_id=group_id, auto_offset_reset="earliest", enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    if not partitions:
        consumer.close()
        raise CpiError(f"topic {topic} does not exist")
    consumer.assign(partitions)
    ends = consumer.end_offsets(partitions)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        if time.monotonic() > deadline:
            consumer.close()
            raise ReadTimeout(f"could not read {topic} to its end within {timeout:.0f}s")
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    return consumer, records
