"""Kafka security on the real, secured session broker (TLS + SCRAM + StandardAuthorizer + `cpi acls apply`).

The expected answer of every check is read from the topic registry (`writers`, `readers`), not from the
ACL code under test, so a wrong derivation fails here. Regression tests for issue 11's findings: an
anonymous client wrote a Decision and a SanitisedIntel, changed a topic's retention and listed every
group's offsets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import GroupAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError

from schemas import SanitisedIntel
from schemas.topics import ADMIN, ALL_TOPICS, DECIDED, PRINCIPALS, ROUTER, SANITISED, TopicSpec
from services.common.kafka import clients
from services.common.kafka.acls import apply_acls, consumer_group, wanted_grants
from services.common.kafka.principals import ADMIN_ENV, principal_env_file, read_env_file, with_connection
from services.common.settings import PlatformSettings

pytestmark = pytest.mark.kafka

OFFSETS = "__consumer_offsets"
_QUICK = {"request_timeout_ms": 5000, "bootstrap_timeout_ms": 3000}  # a refusal is quick; waiting is not


@pytest.fixture
def secured(
    kafka_bootstrap: str, kafka_env_dir: Path, topic_prefix: str, topic_factory: Callable[..., dict[str, str]]
) -> Iterator[Callable[[str], PlatformSettings]]:
    """This test's topics, with the registry's ACLs applied for its prefix and one record on partition 0
    of each (written as the administrator); yields principal name -> that principal's settings."""
    topic_factory()
    base = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    admin = with_connection(base, read_env_file(kafka_env_dir / ADMIN_ENV))
    apply_acls(admin)
    producer = clients.producer(admin)
    try:
        for spec in ALL_TOPICS:
            producer.send(admin.topic(spec.name), key=b"k", value=b"seed", partition=0).get(timeout=30)
    finally:
        producer.close()

    def settings_of(principal: str) -> PlatformSettings:
        path = kafka_env_dir / ADMIN_ENV if principal == ADMIN else principal_env_file(kafka_env_dir, principal)
        return with_connection(base, read_env_file(path))

    yield settings_of


_DENIED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError)


def _write(settings: PlatformSettings, topic: str, value: bytes = b"probe") -> str:
    """"ok", "denied" (the authorizer said no), or the name of whatever else went wrong."""
    try:
        producer = clients.producer(settings, max_block_ms=3000, retries=0, **_QUICK)
    except KafkaError as exc:
        return type(exc).__name__
    try:
        producer.send(topic, key=b"k", value=value, partition=0).get(timeout=15)
        return "ok"
    except _DENIED:
        return "denied"
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        producer.close(timeout=5)


def _read(settings: PlatformSettings, topic: str, group: str | None) -> str:
    """"ok" when the principal gets the topic's first record in `group`, "denied" when the authorizer
    refuses, else what went wrong ("empty" when nothing came)."""
    try:
        # Internal topics shown, so __consumer_offsets is refused by the authorizer, not hidden by the client.
        consumer = clients.consumer(settings, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                                    exclude_internal_topics=False, **_QUICK)
    except KafkaError as exc:
        return type(exc).__name__
    partition = TopicPartition(topic, 0)
    try:
        if not consumer.partitions_for_topic(topic):
            return "denied"  # the topic exists (the fixture wrote to it): the authorizer hides it from this client
        consumer.assign([partition])
        consumer.seek(partition, 0)  # a fetch, whose refusal kafka-python raises (an offset lookup's it logs)
        for _ in range(10):
            if any(consumer.poll(timeout_ms=1000).values()):
                if group is not None:
                    consumer.commit()  # the principal's own group takes its position
                return "ok"
        return "empty"
    except _DENIED:
        return "denied"
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        consumer.close()


def _can_write(settings: PlatformSettings, topic: str, value: bytes = b"probe") -> bool:
    return _write(settings, topic, value) == "ok"


def _can_read(settings: PlatformSettings, topic: str, group: str | None) -> bool:
    return _read(settings, topic, group) == "ok"


def _reads_any_group(principal: str) -> bool:
    return any(principal in spec.readers for spec in ALL_TOPICS)


def test_every_principal_reads_and_writes_exactly_the_topics_the_registry_gives_it(
    secured: Callable[[str], PlatformSettings], topic_prefix: str
) -> None:
    """For every principal, registry topic (and __consumer_offsets) and read or write, the broker allows exactly
    what the registry's `writers` and `readers` say: so the edge only writes `received`, nobody but the
    intake reads `received` and the sanitiser `accepted`, only the router writes decisions, the downstream
    principal only reads `cpi.outcome.*`, and nobody reads the consumer offsets."""
    mismatches = []
    for principal in PRINCIPALS:
        settings = secured(principal)
        group = consumer_group(topic_prefix, principal) if _reads_any_group(principal) else None
        rows: list[tuple[str, TopicSpec | None]] = [(topic_prefix + s.name, s) for s in ALL_TOPICS]
        rows.append((OFFSETS, None))
        for topic, spec in rows:
            # A refusal must be the authorizer's, not some other failure that happens to look like one.
            expected_write = "ok" if spec is not None and principal in spec.writers else "denied"
            expected_read = "ok" if spec is not None and principal in spec.readers else "denied"
            if topic != OFFSETS and (wrote := _write(settings, topic)) != expected_write:
                mismatches.append(f"{principal} write {topic}: {wrote}, expected {expected_write}")
            if (read := _read(settings, topic, group)) != expected_read:
                mismatches.append(f"{principal} read {topic}: {read}, expected {expected_read}")
    assert mismatches == []


def test_the_registry_gives_the_edge_only_received_and_decisions_only_to_the_router() -> None:
    """The grants derived from the registry: the edge's one grant is WRITE on received; every WRITE on the
    decided and outcome topics is the router's; nobody but the intake reads received."""
    grants = wanted_grants("p.")
    assert {(g.resource, g.name, g.operation) for g in grants if g.principal == "cpi-edge"} == {
        ("topic", "p.cpi.submission.received.v1", "WRITE")}
    outcome_writers = {g.principal for g in grants if g.operation == "WRITE" and g.name.startswith("p.cpi.outcome.")}
    assert outcome_writers == {ROUTER}
    assert {g.principal for g in grants if g.name == "p.cpi.submission.received.v1" and g.operation == "READ"} == {
        "cpi-intake"}


def test_acls_apply_is_idempotent_and_removes_grants_the_registry_does_not_make(
    secured: Callable[[str], PlatformSettings], topic_prefix: str
) -> None:
    """A second apply creates nothing; a grant added by hand to one of our principals on one of our topics
    (the edge reading decisions) is removed by the next apply, and the edge can no longer read them."""
    admin = secured(ADMIN)
    again = apply_acls(admin)
    assert again.created == [] and again.removed == [] and len(again.unchanged) == len(wanted_grants(topic_prefix))
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    decided = admin.topic(DECIDED.name)
    client = clients.admin_client(admin)
    try:
        client.create_acls([ACL("User:cpi-edge", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                                ResourcePattern(ResourceType.TOPIC, decided))])
    finally:
        client.close()
    assert _can_read(secured("cpi-edge"), decided, None)
    cleaned = apply_acls(admin)
    assert len(cleaned.removed) == 1 and "cpi-edge" in cleaned.removed[0]
    assert not _can_read(secured("cpi-edge"), decided, None)


def _anonymous(kafka_bootstrap: str, kafka_env_dir: Path, how: str, port: int | None = None) -> PlatformSettings:
    """A client that is not a principal: no TLS, TLS without a login, or a principal's name with a wrong
    password; on the broker's listener or `port`."""
    host = kafka_bootstrap.rpartition(":")[0]
    bootstrap = f"{host}:{port}" if port else kafka_bootstrap
    connection: dict[str, str] = {"CPI_KAFKA_BOOTSTRAP": bootstrap}
    cafile = read_env_file(kafka_env_dir / ADMIN_ENV)["CPI_KAFKA_SSL_CAFILE"]
    if how == "tls":
        connection |= {"CPI_KAFKA_SECURITY_PROTOCOL": "SSL", "CPI_KAFKA_SSL_CAFILE": cafile}
    elif how in ("wrong-password", "admin-wrong-password"):
        connection |= {"CPI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CPI_KAFKA_SSL_CAFILE": cafile,
                       "CPI_KAFKA_SASL_USERNAME": ADMIN if how.startswith("admin") else ROUTER,
                       "CPI_KAFKA_SASL_PASSWORD": "not-the-password"}
    return with_connection(PlatformSettings(), connection)


def _lists_topics(settings: PlatformSettings) -> bool:
    try:
        client = clients.admin_client(settings, **_QUICK)
    except KafkaError:
        return False
    try:
        return bool(client.list_topics())
    except KafkaError:
        return False
    finally:
        client.close()


def _controller_port(kafka_env_dir: Path) -> int:
    properties = (kafka_env_dir / "server.properties").read_text().splitlines()
    servers = next(line for line in properties if line.startswith("controller.quorum.bootstrap.servers="))
    return int(servers.rpartition(":")[2])


@pytest.mark.parametrize("how", ["plaintext", "tls", "wrong-password", "admin-wrong-password"])
@pytest.mark.parametrize("listener", ["clients", "controller"])
def test_a_client_that_is_no_principal_can_neither_list_topics_nor_read_nor_write_a_decision(
    secured: Callable[[str], PlatformSettings], kafka_bootstrap: str, kafka_env_dir: Path, topic_prefix: str,
    how: str, listener: str,
) -> None:
    """Regression (issue 11: an anonymous client wrote a Decision and both teams were e-mailed). Without a
    login, over TLS without one, or with a wrong password, on the client listener or on the controller's
    (mutual TLS only, so no way round the authorizer): no topic list, no decision read, none written — and
    none reached the topic."""
    port = _controller_port(kafka_env_dir) if listener == "controller" else None
    outsider = _anonymous(kafka_bootstrap, kafka_env_dir, how, port)
    decided = topic_prefix + DECIDED.name
    assert not _lists_topics(outsider)
    assert not _can_read(outsider, decided, None)
    assert not _can_write(outsider, decided, b'{"forged": true}')
    assert _records(secured(ADMIN), decided) == [b"seed"]


def _records(settings: PlatformSettings, topic: str) -> list[bytes]:
    from services.common.kafka.reading import read_to_end

    consumer, records = read_to_end(settings, topic, timeout=60)
    consumer.close()
    return [record.value for record in records]


def test_a_forged_decision_or_sanitised_intel_is_refused_from_anyone_but_their_writers(
    secured: Callable[[str], PlatformSettings], kafka_bootstrap: str, kafka_env_dir: Path, topic_prefix: str
) -> None:
    """Regression (issue 11: a forged Decision e-mailed both teams; a forged SanitisedIntel was routed).
    A well-formed Decision from every principal but the router, and a SanitisedIntel from every principal
    but the sanitiser and the Intelligence Unit, are refused; the router's own decision is taken."""
    from services.router.domain import assess, load_rules

    intel = SanitisedIntel.model_validate({
        "intel_id": uuid.uuid4().hex, "received_on": date.today().isoformat(), "categories": ["criminal_exploitation"],
        "information": "A 15-year-old boy is made to carry drugs to a flat by an older man.",
        "how_known": "told_by_subject", "lawful_basis": "safeguarding", "redaction_count": 0})
    decision = assess(intel, load_rules()).model_dump_json().encode()
    forged = {DECIDED: decision, SANITISED: intel.model_dump_json().encode()}
    for spec, body in forged.items():
        topic = topic_prefix + spec.name
        for principal in PRINCIPALS:
            expected = "ok" if principal in spec.writers else "denied"
            assert _write(secured(principal), topic, body) == expected, (principal, spec.name)
        assert not _can_write(_anonymous(kafka_bootstrap, kafka_env_dir, "plaintext"), topic, body)
    assert _records(secured(ADMIN), topic_prefix + DECIDED.name) == [b"seed", decision]


def test_only_the_administrator_alters_a_topic_or_lists_group_offsets(
    secured: Callable[[str], PlatformSettings], kafka_bootstrap: str, kafka_env_dir: Path, topic_prefix: str
) -> None:
    """Regression (issue 11: anonymous admin calls changed a topic's retention and listed every group's
    offsets). No principal but the administrator, and no anonymous client, can change retention (it stays
    as the registry has it) or list another group's committed offsets; the administrator can do both."""
    topic = topic_prefix + DECIDED.name
    router_group = consumer_group(topic_prefix, ROUTER)
    router = clients.consumer(secured(ROUTER), group_id=router_group, enable_auto_commit=False)
    try:  # a committed offset for the router's group, so there is something to list
        router.assign([TopicPartition(topic_prefix + SANITISED.name, 0)])
        router.commit({TopicPartition(topic_prefix + SANITISED.name, 0): _offset(1)})
    finally:
        router.close()

    def alters(settings: PlatformSettings) -> bool:
        try:
            client = clients.admin_client(settings, **_QUICK)
        except KafkaError:
            return False
        try:
            client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "1000"})],
                                 raise_on_unknown=False)
        except KafkaError:
            pass
        finally:
            client.close()
        return _retention(secured(ADMIN), topic) == "1000"

    def lists_offsets(settings: PlatformSettings) -> bool:
        try:
            client = clients.admin_client(settings, **_QUICK)
        except KafkaError:
            return False
        try:
            return bool(client.list_group_offsets({router_group: None}).get(router_group))
        except KafkaError:
            return False
        finally:
            client.close()

    outsiders = [secured(p) for p in PRINCIPALS] + [
        _anonymous(kafka_bootstrap, kafka_env_dir, how) for how in ("plaintext", "tls", "wrong-password")]
    for settings in outsiders:
        assert not alters(settings), settings.kafka_sasl_username
        assert not lists_offsets(settings) or settings.kafka_sasl_username == ROUTER, settings.kafka_sasl_username
    assert _retention(secured(ADMIN), topic) == str(DECIDED.retention_ms)
    assert lists_offsets(secured(ADMIN))
    assert alters(secured(ADMIN))


def _offset(value: int) -> Any:
    from kafka.structs import OffsetAndMetadata

    return OffsetAndMetadata(value, "", -1)


def _retention(settings: PlatformSettings, topic: str) -> str:
    client = clients.admin_client(settings)
    try:
        configs = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
        value: str = configs["topic"][topic]["retention.ms"]["value"]
        return value
    finally:
        client.close()


def test_admin_env_lets_an_operator_read_every_topic_with_the_cpi_commands(
    secured: Callable[[str], PlatformSettings], kafka_env_dir: Path, topic_prefix: str, tmp_path: Path
) -> None:
    """With admin.env's settings every registry topic (and the consumer offsets) is readable; `set -a;
    . admin.env` in a shell with no other Kafka settings is enough for `cpi tail`; admin.env is readable by
    its owner only, in a folder only its owner can enter."""
    assert (kafka_env_dir / ADMIN_ENV).stat().st_mode & 0o777 == 0o600
    assert kafka_env_dir.stat().st_mode & 0o777 == 0o700
    admin = with_connection(PlatformSettings(), read_env_file(kafka_env_dir / ADMIN_ENV))
    assert {spec.name: _read(admin, topic_prefix + spec.name, None) for spec in ALL_TOPICS} == {
        spec.name: "ok" for spec in ALL_TOPICS}
    assert _read(admin, OFFSETS, None) in ("ok", "empty")  # the administrator's (partition 0 may hold nothing)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPI_")}
    env |= {"CPI_TOPIC_PREFIX": topic_prefix, "CPI_DATA_DIR": str(tmp_path), "PYTHONPATH": os.getcwd()}
    script = (f'set -a; . "{kafka_env_dir / ADMIN_ENV}"; set +a; '
              f'exec "{sys.executable}" -m services.cli tail {DECIDED.name} --timeout 3')
    tailed = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert tailed.returncode == 0, tailed.stderr
    assert '"value": "seed"' in tailed.stdout


def test_a_fresh_prefix_has_no_acls_until_applied(kafka_bootstrap: str, kafka_env_dir: Path) -> None:
    """Default deny: on topics no `cpi acls apply` has covered, even the principal that writes them by the
    registry (the edge, for received) is refused."""
    prefix = f"n{uuid.uuid4().hex[:10]}."
    settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)
    from services.common.kafka.admin import apply_topics

    assert apply_topics(with_connection(settings, read_env_file(kafka_env_dir / ADMIN_ENV)), ALL_TOPICS[:1]).ok
    edge = with_connection(settings, read_env_file(principal_env_file(kafka_env_dir, "cpi-edge")))
    assert not _can_write(edge, prefix + ALL_TOPICS[0].name)

