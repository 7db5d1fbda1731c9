"""Session fixtures shared by every test: a real Kafka broker and unique topics per test.

The broker is, in order of preference: the cluster CPI_KAFKA_BOOTSTRAP names; a testcontainers
KafkaContainer (KRaft) where a Docker engine answers; else the local Apache Kafka broker from the
official jars (`services.common.kafka.broker`), on free loopback ports in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.topics import ALL_TOPICS, TopicSpec

SHARED = Path(__file__).resolve().parents[2] / "shared"
TESTDATA = SHARED / "testdata"


def _docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a real Kafka broker for the whole test session."""
    existing = os.environ.get("CPI_KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    if _docker_engine_answers():
        from testcontainers.community.kafka import KafkaContainer

        image = os.environ.get("CPI_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.8.0")
        with KafkaContainer(image).with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from services.common.kafka.broker import LocalBroker, free_port

    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so each test has topics of its own."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def topic_factory(kafka_bootstrap: str, topic_prefix: str) -> Callable[..., dict[str, str]]:
    """Create the registry's topics (or some of them) under this test's prefix; returns name -> real name."""
    from services.common.kafka.admin import apply_topics
    from services.common.settings import PlatformSettings

    def create(*specs: TopicSpec) -> dict[str, str]:
        settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
        chosen = specs or ALL_TOPICS
        report = apply_topics(settings, tuple(chosen))
        assert report.ok, report.drift
        return {spec.name: settings.topic(spec.name) for spec in chosen}

    return create


@pytest.fixture(scope="session")
def blns() -> list[str]:
    """The Big List of Naughty Strings from ../shared/testdata (skips where it is absent)."""
    import json

    path = TESTDATA / "blns" / "blns.json"
    if not path.exists():
        pytest.skip(f"{path} is absent (a clone without ../shared)")
    strings: list[str] = json.loads(path.read_text())
    return strings
