"""The one topic registry: names, partitions, retention and cleanup policy, and each value's model."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas.decision import Decision, Outcome
from schemas.held import HeldIntel
from schemas.intel import SanitisedIntel
from schemas.notification import NotificationRecord, PendingNotification
from schemas.submission import AcceptedSubmission, ReceivedSubmission, RejectedSubmission

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    value_model: type[BaseModel] | None  # None: the value is the original bytes (dead letters)
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"

    def config(self, min_insync_replicas: int) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(min_insync_replicas),
        }


RECEIVED = TopicSpec("cpi.submission.received.v1", ReceivedSubmission, 6, 7 * DAY_MS)
ACCEPTED = TopicSpec("cpi.submission.accepted.v1", AcceptedSubmission, 6, 7 * DAY_MS)
REJECTED = TopicSpec("cpi.submission.rejected.v1", RejectedSubmission, 6, 30 * DAY_MS)
SANITISED = TopicSpec("cpi.intel.sanitised.v1", SanitisedIntel, 6, 365 * DAY_MS)
# Compacted, never deleted by age: records are revisions of one intel's review, keyed by intel id, and
# compaction keeps the latest per intel however long review takes (a time limit could drop an intel
# nobody has released yet). Once it is released, compaction drops the older revisions and their sealed
# excerpts with them.
HELD = TopicSpec("cpi.intel.held.v1", HeldIntel, 6, -1, cleanup_policy="compact")
DECIDED = TopicSpec("cpi.outcome.decided.v1", Decision, 6, 365 * DAY_MS)
OUTCOME_TOPICS: dict[Outcome, TopicSpec] = {
    outcome: TopicSpec(f"cpi.outcome.{outcome.value.replace('_', '-')}.v1", Decision, 6, 365 * DAY_MS)
    for outcome in Outcome
}
DELIVERED = TopicSpec("cpi.notification.delivered.v1", NotificationRecord, 6, 90 * DAY_MS)
RETRY = TopicSpec("cpi.notification.retry.v1", PendingNotification, 6, 7 * DAY_MS)
DEADLETTER = TopicSpec("cpi.deadletter.v1", None, 6, 30 * DAY_MS)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    RECEIVED,
    ACCEPTED,
    REJECTED,
    SANITISED,
    HELD,
    DECIDED,
    *OUTCOME_TOPICS.values(),
    DELIVERED,
    RETRY,
    DEADLETTER,
)
