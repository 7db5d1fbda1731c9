"""`cpi acls apply`: least-privilege ACLs derived from the topic registry, applied idempotently.

Each principal may write the topics whose `writers` name it and read those whose `readers` do, in one
consumer group of its own (`{prefix}{principal}`, which is each worker's faust app id). Nothing else is
granted: with the StandardAuthorizer and allow.everyone.if.no.acl.found=false, no principal but the
administrator (a super user) reads `__consumer_offsets`, alters configurations or describes groups it
is not in. ACLs are literal, on the prefixed names, so two pipelines on one cluster stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from schemas.topics import ALL_TOPICS, PRINCIPALS, TopicSpec
from services.common.errors import CpiError
from services.common.kafka import clients
from services.common.settings import PlatformSettings

if TYPE_CHECKING:
    from kafka.admin import ACL

Operation = Literal["READ", "WRITE"]


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW: `principal` may `operation` the topic or group `name` (already prefixed)."""

    principal: str
    resource: Literal["topic", "group"]
    name: str
    operation: Operation

    def __str__(self) -> str:
        return f"User:{self.principal} {self.operation} {self.resource} {self.name}"


def consumer_group(prefix: str, principal: str) -> str:
    """The one consumer group a principal reads in."""
    return f"{prefix}{principal}"


def wanted_grants(prefix: str, topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> set[Grant]:
    """Every grant the registry implies for topics under `prefix` (pure: no broker)."""
    grants = set()
    for spec in topics:
        name = prefix + spec.name
        grants |= {Grant(writer, "topic", name, "WRITE") for writer in spec.writers}
        grants |= {Grant(reader, "topic", name, "READ") for reader in spec.readers}
        grants |= {Grant(reader, "group", consumer_group(prefix, reader), "READ") for reader in spec.readers}
    return grants


def managed_names(prefix: str, topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> set[str]:
    """The topics and groups whose ACLs for our principals `apply` owns (and so may remove)."""
    return {prefix + spec.name for spec in topics} | {consumer_group(prefix, p) for p in PRINCIPALS}


@dataclass
class AclReport:
    created: list[Grant] = field(default_factory=list)
    unchanged: list[Grant] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # ACLs that were not the registry's, described


class AclError(CpiError):
    """The broker refused to create or remove an ACL."""


def _acl(grant: Grant) -> ACL:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    kind = ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP
    return ACL(principal=f"User:{grant.principal}", host="*", operation=ACLOperation[grant.operation],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(kind, grant.name, ACLResourcePatternType.LITERAL))


def apply_acls(settings: PlatformSettings, topics: tuple[TopicSpec, ...] = ALL_TOPICS) -> AclReport:
    """Create the registry's grants that are missing and remove our principals' other ACLs on the same
    topics and groups; `settings` must connect as the administrator."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    wanted = {_acl(grant): grant for grant in wanted_grants(settings.topic_prefix, topics)}
    names = managed_names(settings.topic_prefix, topics)
    users = {f"User:{principal}" for principal in PRINCIPALS}
    report = AclReport()
    admin = clients.admin_client(settings)
    try:
        everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                      ACLResourcePatternType.ANY))
        existing, _ = admin.describe_acls(everything)
        ours = {acl for acl in existing if acl.principal in users and acl.resource_pattern.resource_name in names}
        missing = [acl for acl in wanted if acl not in ours]
        if missing:
            result = admin.create_acls(missing)
            if result["failed"]:
                raise AclError(f"the broker refused {len(result['failed'])} ACLs: {result['failed'][0]!r}")
        report.created = sorted(wanted[acl] for acl in missing)
        report.unchanged = sorted(wanted[acl] for acl in wanted if acl in ours)
        stale = [acl for acl in ours if acl not in wanted]
        if stale:
            for _filter, _matched, error in admin.delete_acls(stale):
                if error.errno != 0:
                    raise AclError(f"the broker refused to remove an ACL: {error.__name__}")
        report.removed = sorted(repr(acl) for acl in stale)
    finally:
        admin.close()
    return report
