"""The Strimzi KafkaTopics and KafkaUsers are the topic registry's, and the overlays hold what `cpi strimzi` makes."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from typing import Any

import pytest
import yaml

from schemas.topics import ADMIN, ALL_TOPICS, DEADLETTER, DOWNSTREAM, PRINCIPALS, RECEIVED
from services.cli import main
from services.common.kafka.acls import Grant, wanted_grants
from services.common.kafka.strimzi import kafka_topics, kafka_users, login_secret, render
from tests.unit.deploy_manifests import K8S, of_kind, pod_templates
from tests.unit.deploy_manifests import render as render_overlay

# Each overlay's replication and min.insync.replicas: the generated file's, and the ConfigMap's for the clients.
OVERLAY_REPLICATION = {"overlays/dev": (1, 1), "overlays/prod": (3, 2)}


def _grants(users: list[dict[str, Any]]) -> set[Grant]:
    """The ACLs of KafkaUsers read back as the registry's grants."""
    return {Grant(user["metadata"]["name"], acl["resource"]["type"], acl["resource"]["name"], operation.upper())
            for user in users for acl in user["spec"].get("authorization", {}).get("acls", [])
            for operation in acl["operations"]}


@pytest.mark.parametrize("overlay", sorted(OVERLAY_REPLICATION))
def test_each_overlay_holds_exactly_what_the_generator_makes_from_the_registry(overlay: str) -> None:
    """deploy/k8s/<overlay>/strimzi-topics-users.yaml is byte for byte `cpi strimzi` with the overlay's
    replication (regenerate it after changing schemas/topics.py), and the clients' settings in the overlay's
    ConfigMap ask for the same replication and min.insync.replicas."""
    replicas, min_insync = OVERLAY_REPLICATION[overlay]
    assert (K8S / overlay / "strimzi-topics-users.yaml").read_text() == render(replicas, min_insync)
    config = of_kind(render_overlay(overlay), "ConfigMap")["cpi-config"]["data"]
    assert (config["CPI_REPLICATION_FACTOR"], config["CPI_MIN_INSYNC_REPLICAS"]) == (str(replicas), str(min_insync))


@pytest.mark.parametrize("overlay", sorted(OVERLAY_REPLICATION))
def test_the_rendered_topics_are_the_registry_topics_with_their_settings(overlay: str) -> None:
    """Every registry topic, and no other, is a KafkaTopic of the overlay's cluster with the registry's
    partitions, cleanup policy and retention; prod's at replication 3 and min.insync.replicas 2."""
    replicas, min_insync = OVERLAY_REPLICATION[overlay]
    topics = {t["spec"]["topicName"]: t for t in of_kind(render_overlay(overlay), "KafkaTopic").values()}
    assert set(topics) == {spec.name for spec in ALL_TOPICS}
    for spec in ALL_TOPICS:
        topic = topics[spec.name]
        assert topic["metadata"]["labels"] == {"strimzi.io/cluster": "cpi-kafka"}
        assert (topic["spec"]["partitions"], topic["spec"]["replicas"]) == (spec.partitions, replicas)
        sized = {} if spec.max_message_bytes is None else {"max.message.bytes": str(spec.max_message_bytes)}
        assert topic["spec"]["config"] == {"cleanup.policy": spec.cleanup_policy,
                                           "retention.ms": str(spec.retention_ms),
                                           "min.insync.replicas": str(min_insync), **sized}


@pytest.mark.parametrize("overlay", sorted(OVERLAY_REPLICATION))
def test_the_rendered_users_carry_exactly_the_acls_cpi_acls_apply_grants(overlay: str) -> None:
    """Every principal is a SCRAM-SHA-512 KafkaUser whose ACLs are exactly the registry's grants (the same set
    `cpi acls apply` creates on a broker), nothing more; the administrator has none and is the Kafka's one
    super user; each password comes from the Secret the principal's pod logs in with."""
    docs = render_overlay(overlay)
    users = of_kind(docs, "KafkaUser")
    assert set(users) == {*PRINCIPALS, ADMIN}
    assert _grants(list(users.values())) == wanted_grants("")
    assert "authorization" not in users[ADMIN]["spec"]
    assert of_kind(docs, "Kafka")["cpi-kafka"]["spec"]["kafka"]["authorization"]["superUsers"] == [ADMIN]
    logins = {ref["secretRef"]["name"] for pod in pod_templates(docs).values()
              for c in pod["spec"]["containers"] for ref in c.get("envFrom", [])
              if ref.get("secretRef", {}).get("name", "").startswith("cpi-kafka-")}
    for name, user in users.items():
        auth = user["spec"]["authentication"]
        assert auth["type"] == "scram-sha-512"
        assert auth["password"]["valueFrom"]["secretKeyRef"] == {"name": login_secret(name),
                                                                "key": "CPI_KAFKA_SASL_PASSWORD"}
    assert logins <= {login_secret(name) for name in users}


def test_no_user_may_read_the_dead_letters_or_the_raw_submissions_but_their_one_stage() -> None:
    """Source protection in the users: the dead letters (original bytes, sources included) are readable by no
    KafkaUser (the administrator alone, as super user); received submissions only by the intake; downstream
    systems read outcome topics only."""
    reads = {(g.principal, g.name) for g in _grants(kafka_users()) if g.operation == "READ" and g.resource == "topic"}
    assert not [p for p, topic in reads if topic == DEADLETTER.name]
    assert {p for p, topic in reads if topic == RECEIVED.name} == {"cpi-intake"}
    assert {topic for p, topic in reads if p == DOWNSTREAM} and all(
        topic.startswith("cpi.outcome.") for p, topic in reads if p == DOWNSTREAM)


def test_a_registry_change_and_a_prefix_reach_the_generated_resources() -> None:
    """The generator follows the registry it is given: a topic's new partition count and readers show up, and a
    prefix (two pipelines on one cluster) prefixes every topic and consumer group the ACLs name."""
    changed = (replace(RECEIVED, partitions=12, readers=frozenset({"cpi-intake", DOWNSTREAM})),)
    (topic,) = kafka_topics(3, 2, topics=changed)
    assert topic["spec"]["partitions"] == 12
    assert Grant(DOWNSTREAM, "topic", RECEIVED.name, "READ") in _grants(kafka_users(topics=changed))
    prefixed = kafka_topics(3, 2, prefix="test-")
    assert all(t["spec"]["topicName"].startswith("test-") for t in prefixed)
    assert _grants(kafka_users(prefix="test-")) == wanted_grants("test-")
    assert all(g.name.startswith("test-") for g in _grants(kafka_users(prefix="test-")))


def test_the_command_prints_the_resources_and_refuses_an_impossible_replication(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`cpi strimzi` prints the generated YAML (what the overlays hold); asking for more in-sync replicas than
    replicas is refused with a message naming both, rather than making topics no write could ever reach."""
    assert main(["strimzi", "--replicas", "3", "--min-insync-replicas", "2"]) == 0
    out = capsys.readouterr().out
    assert out == (K8S / "overlays/prod/strimzi-topics-users.yaml").read_text()
    assert len([d for d in yaml.safe_load_all(out) if d]) == len(ALL_TOPICS) + len(PRINCIPALS) + 1
    assert main(["strimzi", "--replicas", "2", "--min-insync-replicas", "3"]) == 2
    assert "--min-insync-replicas 3 is more than --replicas 2" in capsys.readouterr().err
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        main(["strimzi", "--replicas", "0"])
    assert "not a whole number of 1 or more" in err.getvalue()
