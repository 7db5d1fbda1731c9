"""The one topic registry: names, partitions, retention and cleanup policy, each value's model, and which
Kafka principal may write and read each topic (`cpi acls apply` derives the broker's ACLs from it)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas.audit import AuditEntry
from schemas.decision import Decision, DecisionReview, Outcome
from schemas.held import HeldIntel
from schemas.intel import SanitisedIntel
from schemas.notification import NotificationRecord, PendingNotification
from schemas.submission import AcceptedSubmission, ReceivedSubmission, RejectedSubmission

DAY_MS = 24 * 60 * 60 * 1000

# The Kafka principals (SCRAM user names), one per process that talks to Kafka. Each reading principal
# has one consumer group of its own, named after it (a worker's faust app id is `cpi-{stage}`), under
# the topic prefix. The administrator (`cpi topics apply`, `cpi acls apply`, `cpi tail`, `cpi dlq`,
# `cpi reassess`) is a super user and needs no ACL.
EDGE = "cpi-edge"  # the HTTP edge: writes only what it receives
INTAKE = "cpi-intake"
SANITISER = "cpi-sanitiser"
ROUTER = "cpi-router"
NOTIFIER = "cpi-notifier"
IU = "cpi-iu"  # the Intelligence Unit's `cpi held` and console: reviews held intel and decisions
DOWNSTREAM = "cpi-downstream"  # consumers of the outcome topics
AUDITOR = "cpi-auditor"  # `cpi sealed audit-verify`: reads the audit topic, writes nothing
ADMIN = "cpi-admin"
PRINCIPALS: tuple[str, ...] = (EDGE, INTAKE, SANITISER, ROUTER, NOTIFIER, IU, DOWNSTREAM, AUDITOR)
WORKER_PRINCIPALS = (INTAKE, SANITISER, ROUTER, NOTIFIER)  # these write dead letters


# The largest record batch a topic takes unless configured otherwise (Kafka's `message.max.bytes` default).
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
# A dead letter is its input's bytes and key plus a few hundred bytes of headers, so the dead-letter topic takes
# anything an input topic took, with room to spare; every stage's producer may send that much (regression, issue
# 14: the largest record an input topic took had a dead letter too big to publish, and its stage stalled).
DEADLETTER_MAX_BYTES = KAFKA_DEFAULT_MAX_MESSAGE_BYTES + 64 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    value_model: type[BaseModel] | None  # None: the value is the original bytes (dead letters)
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    writers: frozenset[str] = frozenset()  # principals allowed to produce to it
    readers: frozenset[str] = frozenset()  # principals allowed to consume it (in their own group)
    max_message_bytes: int | None = None  # None: the broker's own `message.max.bytes`

    def config(self, min_insync_replicas: int) -> dict[str, str]:
        config = {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(min_insync_replicas),
        }
        if self.max_message_bytes is not None:
            config["max.message.bytes"] = str(self.max_message_bytes)
        return config


RECEIVED = TopicSpec("cpi.submission.received.v1", ReceivedSubmission, 6, 7 * DAY_MS,
                     writers=frozenset({EDGE}), readers=frozenset({INTAKE}))
ACCEPTED = TopicSpec("cpi.submission.accepted.v1", AcceptedSubmission, 6, 7 * DAY_MS,
                     writers=frozenset({INTAKE}), readers=frozenset({SANITISER}))
REJECTED = TopicSpec("cpi.submission.rejected.v1", RejectedSubmission, 6, 30 * DAY_MS, writers=frozenset({INTAKE}))
# The Intelligence Unit writes here too: `cpi held release` publishes a reviewed intel.
SANITISED = TopicSpec("cpi.intel.sanitised.v1", SanitisedIntel, 6, 365 * DAY_MS,
                      writers=frozenset({SANITISER, IU}), readers=frozenset({ROUTER}))
# Compacted, never deleted by age: records are revisions of one intel's review, keyed by intel id, and
# compaction keeps the latest per intel however long review takes (a time limit could drop an intel
# nobody has released yet). Once it is released, compaction drops the older revisions and their sealed
# excerpts with them.
HELD = TopicSpec("cpi.intel.held.v1", HeldIntel, 6, -1, cleanup_policy="compact",
                 writers=frozenset({SANITISER, IU}), readers=frozenset({IU}))
# Only the router decides: a Decision from anyone else would e-mail the teams. The console reads every
# decision into its review queue.
DECIDED = TopicSpec("cpi.outcome.decided.v1", Decision, 6, 365 * DAY_MS,
                    writers=frozenset({ROUTER}), readers=frozenset({NOTIFIER, DOWNSTREAM, IU}))
OUTCOME_TOPICS: dict[Outcome, TopicSpec] = {
    outcome: TopicSpec(f"cpi.outcome.{outcome.value.replace('_', '-')}.v1", Decision, 6, 365 * DAY_MS,
                       writers=frozenset({ROUTER}), readers=frozenset({DOWNSTREAM}))
    for outcome in Outcome
}
# A handler's confirmation or amendment, from the console (as the Intelligence Unit) to the router, which alone
# turns it into the decision's next revision on the decided and outcome topics: the console never writes a
# Decision, so the teams are told only what the router published. Keyed by intel id, like the decisions.
REVIEWED = TopicSpec("cpi.decision.reviewed.v1", DecisionReview, 6, 365 * DAY_MS,
                     writers=frozenset({IU}), readers=frozenset({ROUTER}))
DELIVERED = TopicSpec("cpi.notification.delivered.v1", NotificationRecord, 6, 90 * DAY_MS,
                      writers=frozenset({NOTIFIER}))
RETRY = TopicSpec("cpi.notification.retry.v1", PendingNotification, 6, 7 * DAY_MS,
                  writers=frozenset({NOTIFIER}), readers=frozenset({NOTIFIER}))
# Read by the administrator only (`cpi dlq`): a dead letter is the original bytes, sources included.
DEADLETTER = TopicSpec("cpi.deadletter.v1", None, 6, 30 * DAY_MS, writers=frozenset(WORKER_PRINCIPALS),
                       max_message_bytes=DEADLETTER_MAX_BYTES)

# The sealed store's audit log, anchored outside its database: every entry the unseal path (cpi-iu: the console,
# `cpi held`, `cpi sealed`, `cpi keys rotate`) writes, acknowledged before the action it records is done. One
# partition, so the topic's order is the chain's; never compacted and never deleted by age; only cpi-iu writes
# and only the auditor reads, and no principal may delete records (no ACL grants DELETE), so a database rewritten
# or restored from an older copy disagrees with it (`cpi sealed audit-verify`).
AUDIT = TopicSpec("cpi.audit.sealed.v1", AuditEntry, 1, -1, writers=frozenset({IU}), readers=frozenset({AUDITOR}))

ALL_TOPICS: tuple[TopicSpec, ...] = (
    RECEIVED,
    ACCEPTED,
    REJECTED,
    SANITISED,
    HELD,
    DECIDED,
    *OUTCOME_TOPICS.values(),
    REVIEWED,
    DELIVERED,
    RETRY,
    DEADLETTER,
    AUDIT,
)
