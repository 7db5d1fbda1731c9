"""Consumer lag and stage latency of a real worker on a real broker, read from its /metrics."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.topics import ACCEPTED, DEADLETTER, HELD, SANITISED
from services.common.kafka import clients
from services.common.kafka.broker import free_port
from services.common.settings import PlatformSettings
from tests.kafka_helpers import worker_process

pytestmark = pytest.mark.kafka

RECORDS = 6
POOL_WAIT = 4.0


def _scrape(port: int) -> list[Any]:
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return [sample for family in text_string_to_metric_families(page) for sample in family.samples]


def _value(samples: list[Any], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_lag_counts_records_waiting_uncommitted_and_latency_includes_the_mixing_wait(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """Six records held in the sanitiser's mixing pool (released after 4 s, not by count) show as a lag of six on
    its input topic while they wait, and none is measured yet; once released (dead-lettered: they are not
    submissions) the lag is back to 0 and each of the six is measured at 4 s or more (the pool's wait) and under
    30 s. The labels are the stage, the registry topic name and partition numbers; nothing from the records."""
    names = topic_factory(ACCEPTED, SANITISED, HELD, DEADLETTER)
    port = free_port()
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
           "CPI_DATA_DIR": str(tmp_path), "CPI_RELEASE_MIN_RECORDS": "100",
           "CPI_RELEASE_MAX_WAIT_SECONDS": str(POOL_WAIT), "CPI_PROGRESS_INTERVAL_SECONDS": "0.5"}
    canary = f"Zaffaroni{uuid.uuid4().hex[:8]}"
    with worker_process("sanitiser", env, port, tmp_path / "worker.log"):
        time.sleep(1.5)  # a few readings of the empty partitions first, so the records' arrival is seen
        producer = clients.producer(PlatformSettings(kafka_bootstrap=kafka_bootstrap))
        try:  # all at once, so each waits the pool's whole time
            for n in range(RECORDS):
                producer.send(names[ACCEPTED.name], value=f'{{"from": "{canary}", "n": {n}}}'.encode(),
                              key=f"{canary}-{n}".encode())
            producer.flush(timeout=30)
        finally:
            producer.close()

        waiting = {"stage": "sanitiser", "topic": ACCEPTED.name}
        deadline = time.monotonic() + 30
        while _value(samples := _scrape(port), "cpi_consumer_lag", **waiting) != RECORDS:
            assert time.monotonic() < deadline, "the six waiting records show as lag"
            time.sleep(0.2)
        assert _value(samples, "cpi_stage_latency_seconds_count", stage="sanitiser") == 0

        deadline = time.monotonic() + 60
        while (_value(samples := _scrape(port), "cpi_stage_latency_seconds_count", stage="sanitiser") < RECORDS
               or _value(samples, "cpi_consumer_lag", **waiting) != 0):
            assert time.monotonic() < deadline, "released, measured and committed"
            time.sleep(0.5)
        assert _value(samples, "cpi_stage_latency_seconds_count", stage="sanitiser") == RECORDS
        assert _value(samples, "cpi_stage_latency_seconds_bucket", stage="sanitiser", le="2.5") == 0
        assert _value(samples, "cpi_stage_latency_seconds_bucket", stage="sanitiser", le="30.0") == RECORDS
        assert _value(samples, "cpi_stage_latency_seconds_sum", stage="sanitiser") >= RECORDS * (POOL_WAIT - 0.5)

        lag_labels = [s.labels for s in samples if s.name == "cpi_consumer_lag"]
        assert lag_labels and all(set(labels) == {"stage", "topic", "partition"} for labels in lag_labels)
        assert {labels["topic"] for labels in lag_labels} == {ACCEPTED.name}
        assert all(labels["stage"] == "sanitiser" and labels["partition"].isdigit() for labels in lag_labels)
        assert all(canary not in value for s in samples for value in s.labels.values())
