"""Strimzi resources from the topic registry: one `KafkaTopic` per registry topic and one `KafkaUser` per
principal carrying exactly the ACLs `cpi acls apply` grants (the same `wanted_grants`), so a cluster whose
topics and users the Strimzi operators manage matches the registry as one managed by `cpi` does.

`cpi strimzi --replicas 3 --min-insync-replicas 2` prints them; deploy/k8s/overlays/*/strimzi-topics-users.yaml
are its output, kept in step by a test. Pure: no broker, no cluster.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import yaml

from schemas.topics import ADMIN, ALL_TOPICS, PRINCIPALS, TopicSpec
from services.common.kafka.acls import wanted_grants

API_VERSION = "kafka.strimzi.io/v1beta2"
CLUSTER = "cpi-kafka"  # the Strimzi `Kafka` resource's name in the overlays
PASSWORD_KEY = "CPI_KAFKA_SASL_PASSWORD"  # noqa: S105 (a variable's name, not a password): the key each pod's `cpi-kafka-<name>` Secret already holds


def login_secret(principal: str) -> str:
    """The Secret holding a principal's Kafka login (`cpi-edge` -> `cpi-kafka-edge`), which its pod takes."""
    return "cpi-kafka-" + principal.removeprefix("cpi-")


def resource_name(name: str) -> str:
    """A Kubernetes object name for a topic name (lower case, dots and dashes only)."""
    return re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip(".-")


def kafka_topics(replicas: int, min_insync_replicas: int, prefix: str = "", cluster: str = CLUSTER,
                 topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[dict[str, Any]]:
    """A KafkaTopic per registry topic: its partitions, retention and cleanup policy, as `cpi topics apply`."""
    return [{
        "apiVersion": API_VERSION,
        "kind": "KafkaTopic",
        "metadata": {"name": resource_name(prefix + spec.name), "labels": {"strimzi.io/cluster": cluster}},
        "spec": {"topicName": prefix + spec.name, "partitions": spec.partitions, "replicas": replicas,
                 "config": spec.config(min_insync_replicas)},
    } for spec in topics]


def kafka_users(prefix: str = "", cluster: str = CLUSTER,
                topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[dict[str, Any]]:
    """A SCRAM-SHA-512 KafkaUser per principal, its password taken from the Secret its pod logs in with; each
    service principal's simple-authorization ACLs are the registry's grants, the administrator (a super user
    in the Kafka resource) has none."""
    operations: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for grant in wanted_grants(prefix, topics):
        operations[grant.principal][(grant.resource, grant.name)].add(grant.operation.capitalize())
    users = []
    for principal in (*PRINCIPALS, ADMIN):
        spec: dict[str, Any] = {"authentication": {
            "type": "scram-sha-512",
            "password": {"valueFrom": {"secretKeyRef": {"name": login_secret(principal), "key": PASSWORD_KEY}}},
        }}
        if principal != ADMIN:
            spec["authorization"] = {"type": "simple", "acls": [
                {"resource": {"type": resource, "name": name, "patternType": "literal"},
                 "operations": sorted(ops), "host": "*", "type": "allow"}
                for (resource, name), ops in sorted(operations[principal].items())
            ]}
        users.append({"apiVersion": API_VERSION, "kind": "KafkaUser",
                      "metadata": {"name": principal, "labels": {"strimzi.io/cluster": cluster}}, "spec": spec})
    return users


def render(replicas: int, min_insync_replicas: int, prefix: str = "", cluster: str = CLUSTER) -> str:
    """The KafkaTopics then the KafkaUsers as one YAML stream, headed by the command that made it."""
    command = f"cpi strimzi --replicas {replicas} --min-insync-replicas {min_insync_replicas}"
    if prefix:
        command += f" --prefix {prefix}"
    if cluster != CLUSTER:
        command += f" --cluster {cluster}"
    header = (f"# Generated from the topic registry (schemas/topics.py) by `{command}`.\n"
              "# Do not edit: change the registry and run the command again (tests/unit/test_deploy_strimzi.py).\n")
    documents = [*kafka_topics(replicas, min_insync_replicas, prefix, cluster), *kafka_users(prefix, cluster)]
    return header + yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True, width=120)
