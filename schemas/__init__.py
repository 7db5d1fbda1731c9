"""The v1 contracts: the only thing the services share. JSON on the wire, frozen pydantic models."""

from schemas.audit import AuditEntry
from schemas.base import Category, CpiModel, HowKnown, LawfulBasis
from schemas.deadletter import DeadLetter
from schemas.decision import Decision, Grading, Outcome, Priority, Review, ReviewReason, RuleFiring, Thrive
from schemas.held import HeldContent, HeldIntel, HeldReason, HeldStatus
from schemas.intel import SanitisedIntel
from schemas.notification import (
    DeliveryChannel,
    DeliveryStatus,
    NotificationRecord,
    PendingNotification,
    Team,
    WebhookAlert,
)
from schemas.submission import (
    AcceptedSubmission,
    Channel,
    EnvelopeAlg,
    Location,
    PublicSealed,
    ReceivedSubmission,
    RejectedSubmission,
    SealedEnvelope,
    Source,
    Subject,
    Submission,
    SubmissionContent,
    ValidationIssue,
    Vehicle,
)

__all__ = [
    "AcceptedSubmission",
    "AuditEntry",
    "Category",
    "Channel",
    "CpiModel",
    "DeadLetter",
    "Decision",
    "DeliveryChannel",
    "DeliveryStatus",
    "EnvelopeAlg",
    "Grading",
    "HeldContent",
    "HeldIntel",
    "HeldReason",
    "HeldStatus",
    "HowKnown",
    "LawfulBasis",
    "Location",
    "NotificationRecord",
    "Outcome",
    "PendingNotification",
    "Priority",
    "PublicSealed",
    "ReceivedSubmission",
    "RejectedSubmission",
    "Review",
    "ReviewReason",
    "RuleFiring",
    "SanitisedIntel",
    "SealedEnvelope",
    "Source",
    "Subject",
    "Submission",
    "SubmissionContent",
    "Team",
    "Thrive",
    "ValidationIssue",
    "Vehicle",
    "WebhookAlert",
]
