"""Reading and writing real topics in tests (kafka-python, synchronous and simple).

Each connects to `bootstrap` as the session's CPI_KAFKA_* settings say (the administrator, on the
secured session broker), through the one client factory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.common.kafka import clients
from services.common.kafka.broker import LocalBroker
from services.common.kafka.reading import read_to_end
from services.common.processes import stop_process, wait_until_ready
from services.common.settings import PlatformSettings


def connect_as_administrator(environment: Any, broker: LocalBroker) -> None:
    """Point this process's CPI_KAFKA_* settings (and CPI_KAFKA_ENV_DIR, the principals' env files) at a local
    broker's administrator, through `environment` (a pytest.MonkeyPatch, which undoes it). The bootstrap is
    left out: tests name the broker themselves, as with a cluster."""
    from services.common.kafka.principals import SECURITY_VARIABLES, read_env_file

    for name in SECURITY_VARIABLES:
        environment.delenv(name, raising=False)
    for name, value in read_env_file(broker.admin_env_file).items():
        if name != "CPI_KAFKA_BOOTSTRAP":
            environment.setenv(name, value)
    environment.setenv("CPI_KAFKA_ENV_DIR", str(broker.workdir))


def produce(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = clients.producer(PlatformSettings(kafka_bootstrap=bootstrap))
    try:
        producer.send(topic, value=value, key=key).get(timeout=30)
    finally:
        producer.close()


def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record on a topic so far (kafka-python ConsumerRecords), read up to its end offsets."""
    consumer, records = read_to_end(PlatformSettings(kafka_bootstrap=bootstrap), topic)
    consumer.close()
    return records


def wait_for(bootstrap: str, topic: str, match: Callable[[Any], bool], timeout: float = 90.0) -> Any:
    """The first record on `topic` that `match` accepts; fails the test after `timeout` seconds."""
    consumer = clients.consumer(PlatformSettings(kafka_bootstrap=bootstrap), topic, auto_offset_reset="earliest",
                                enable_auto_commit=False, consumer_timeout_ms=1000)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for record in consumer:
                if match(record):
                    return record
        raise AssertionError(f"no matching record on {topic} within {timeout:.0f}s")
    finally:
        consumer.close()


def json_value(record: Any) -> Any:
    return json.loads(record.value)


@contextmanager
def worker_process(name: str, env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`cpi worker NAME` as its own process, ready (its /readyz answers) when the block starts; stopped
    with SIGTERM when it ends."""
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", name],
                                  env={**env, "CPI_WORKER_PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", process=worker)
        yield worker
    finally:
        stop_process(worker)
