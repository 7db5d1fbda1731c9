"""`cpi topics apply`: create the registry's topics idempotently and report configuration drift."""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from schemas.topics import ALL_TOPICS, TopicSpec
from services.common.kafka.clients import admin_client
from services.common.settings import PlatformSettings

_ALREADY_EXISTS = 36


@dataclass
class TopicReport:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    drift: dict[str, list[str]] = field(default_factory=dict)  # topic -> what differs

    @property
    def ok(self) -> bool:
        return not self.drift


def apply_topics(settings: PlatformSettings, topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> TopicReport:
    """Create every missing topic with its partitions, replication and config; compare the rest."""
    report = TopicReport()
    admin = admin_client(settings)
    try:
        wanted = {
            settings.topic(spec.name): {
                "num_partitions": spec.partitions,
                "replication_factor": settings.replication_factor,
                "configs": spec.config(settings.min_insync_replicas),
            }
            for spec in topics
        }
        response = admin.create_topics(wanted, raise_errors=False, wait_for_metadata=True)
        existing = []
        for result in response["topics"]:
            if result["error_code"] == 0:
                report.created.append(result["name"])
            elif result["error_code"] == _ALREADY_EXISTS:
                existing.append(result["name"])
            else:
                report.drift[result["name"]] = [f"create failed: {result['error_message']}"]
        if existing:
            _compare(admin, {name: wanted[name] for name in existing}, report)
    finally:
        admin.close()
    return report


def _compare(admin: KafkaAdminClient, wanted: dict[str, dict[str, object]], report: TopicReport) -> None:
    described = {t["name"]: t for t in admin.describe_topics(list(wanted))}
    configs = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted], config_filter="all"
    )["topic"]
    for name, spec in wanted.items():
        differences = []
        partitions = described[name]["partitions"]
        if len(partitions) != spec["num_partitions"]:
            differences.append(f"partitions {len(partitions)} != {spec['num_partitions']}")
        replicas = len(partitions[0]["replica_nodes"]) if partitions else 0
        if replicas != spec["replication_factor"]:
            differences.append(f"replication {replicas} != {spec['replication_factor']}")
        for key, value in spec["configs"].items():  # type: ignore[attr-defined]
            actual = configs.get(name, {}).get(key, {}).get("value")
            if actual != value:
                differences.append(f"{key} {actual} != {value}")
        if differences:
            report.drift[name] = differences
        else:
            report.unchanged.append(name)
