"""The local Apache Kafka broker and `cpi topics apply`, against real brokers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from schemas.topics import ALL_TOPICS, DEADLETTER, SANITISED
from services.common.kafka.admin import apply_topics
from services.common.kafka.broker import cluster_version, free_port
from services.common.kafka.clients import admin_client
from services.common.settings import PlatformSettings

pytestmark = pytest.mark.kafka


def _cpi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_cpi_kafka_starts_reports_and_stops_an_apache_kafka_4_broker(tmp_path: Path) -> None:
    """`cpi kafka start` runs a broker from the official jars that answers; `status` gives its bootstrap
    and a 4.x version (also printed by the broker itself at start-up); `stop` ends it cleanly."""
    env = {k: v for k, v in os.environ.items() if k != "CPI_KAFKA_BOOTSTRAP"}
    env |= {"CPI_DATA_DIR": str(tmp_path), "CPI_LOCAL_KAFKA_PORT": str(free_port()),
            "CPI_LOCAL_CONTROLLER_PORT": str(free_port())}
    started = _cpi("kafka", "start", env=env)
    assert started.returncode == 0, started.stderr
    assert f"set -a; . {tmp_path / 'kafka' / 'admin.env'}" in started.stdout
    try:
        status = _cpi("kafka", "status", env=env)
        assert status.returncode == 0, status.stderr
        reported = json.loads(status.stdout)
        assert reported["answering"] is True
        assert reported["security"] == "secured" and reported["admin_env"] == str(tmp_path / "kafka" / "admin.env")
        assert reported["bootstrap"] == f"127.0.0.1:{env['CPI_LOCAL_KAFKA_PORT']}"
        assert reported["version"].startswith("4.")
        log = (tmp_path / "kafka" / "logs" / "broker.log").read_text()
        assert f"Kafka version: {reported['version']}" in log
    finally:
        stopped = _cpi("kafka", "stop", env=env)
    assert stopped.returncode == 0
    after = _cpi("kafka", "status", env=env)
    assert after.returncode == 1
    assert json.loads(after.stdout)["running"] is False


def test_the_local_broker_runs_open_only_when_asked_and_never_switches_silently(tmp_path: Path) -> None:
    """CPI_LOCAL_KAFKA_SECURITY=open runs a PLAINTEXT broker any client can use (for experiments), its
    admin.env saying so; starting that broker's data secured later is refused with what to do, not done by
    quietly dropping or keeping its security."""
    from services.common.kafka.broker import BrokerError, LocalBroker
    from services.common.kafka.clients import admin_client as make_admin
    from services.common.kafka.principals import read_env_file, with_connection

    broker = LocalBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port(), security="open")
    broker.start()
    try:
        env_file = read_env_file(broker.admin_env_file)
        assert env_file == {"CPI_KAFKA_BOOTSTRAP": broker.bootstrap, "CPI_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
        anyone = make_admin(with_connection(PlatformSettings(), {"CPI_KAFKA_BOOTSTRAP": broker.bootstrap}))
        try:
            assert isinstance(anyone.list_topics(), list)
        finally:
            anyone.close()
    finally:
        broker.stop()
    secured = LocalBroker(broker.workdir, port=broker.port, controller_port=broker.controller_port)
    with pytest.raises(BrokerError, match=r"was set up open.*CPI_LOCAL_KAFKA_SECURITY=open"):
        secured.start()


def test_a_principal_whose_login_is_missing_gets_a_new_one_when_the_broker_restarts(tmp_path: Path) -> None:
    """A service principal's env file made after the storage was formatted (a principal new to the
    registry, or a file removed) gets a fresh password that the restarted broker accepts; a wrong one is
    still refused."""
    from kafka.errors import KafkaError

    from services.common.kafka.broker import LocalBroker
    from services.common.kafka.clients import admin_client as make_admin
    from services.common.kafka.principals import principal_env_file, read_env_file, with_connection

    broker = LocalBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    broker.stop()
    path = principal_env_file(broker.workdir, "cpi-downstream")
    old = read_env_file(path)
    path.unlink()
    broker.start()
    try:
        new = read_env_file(path)
        assert new["CPI_KAFKA_SASL_PASSWORD"] != old["CPI_KAFKA_SASL_PASSWORD"]
        client = make_admin(with_connection(PlatformSettings(), new))
        try:
            assert isinstance(client.list_topics(), list)  # logged in (it may see no topic)
        finally:
            client.close()
        with pytest.raises(KafkaError):
            make_admin(with_connection(PlatformSettings(), old), bootstrap_timeout_ms=3000).list_topics()
    finally:
        broker.stop()


def test_the_session_broker_speaks_kafka_4(kafka_bootstrap: str) -> None:
    """The broker every integration test uses is Kafka 4 or newer."""
    major = int(cluster_version(PlatformSettings(kafka_bootstrap=kafka_bootstrap)).split(".")[0])
    assert major >= 4


def test_topics_apply_creates_then_is_idempotent(kafka_bootstrap: str, topic_prefix: str) -> None:
    """The first apply creates every registry topic with its partitions and config; the second changes
    nothing and reports no drift."""
    settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    first = apply_topics(settings)
    assert sorted(first.created) == sorted(settings.topic(s.name) for s in ALL_TOPICS)
    second = apply_topics(settings)
    assert second.created == [] and second.ok
    assert len(second.unchanged) == len(ALL_TOPICS)
    admin = admin_client(settings)
    try:
        described = admin.describe_topics([settings.topic(SANITISED.name)])[0]
        assert len(described["partitions"]) == SANITISED.partitions
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic(SANITISED.name))], config_filter="all"
        )["topic"][settings.topic(SANITISED.name)]
        assert configs["retention.ms"]["value"] == str(SANITISED.retention_ms)
    finally:
        admin.close()


def test_topics_apply_reports_config_drift(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]]
) -> None:
    """A topic whose retention was changed by hand is reported as drift, naming the setting."""
    names = topic_factory(DEADLETTER)
    settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    admin = admin_client(settings)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, names[DEADLETTER.name],
                                            configs={"retention.ms": "1234", "cleanup.policy": "delete",
                                                     "min.insync.replicas": "1"})])
    finally:
        admin.close()
    report = apply_topics(settings, (DEADLETTER,))
    assert not report.ok
    assert any("retention.ms 1234" in d for d in report.drift[names[DEADLETTER.name]])
