"""Decision: the router's assessment of one piece of sanitised intelligence."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import CpiModel, Identifier, Normalised, PastDate, ShortText, refuse_control_characters, unique_items
from schemas.intel import SanitisedIntel


class Outcome(StrEnum):
    INTELLIGENCE_LOG = "intelligence_log"
    CRIME_DESK = "crime_desk"
    SAFEGUARDING = "safeguarding"
    NO_ACTION = "no_action"


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


class Grading(CpiModel):
    """The 3x5x2 grading: source evaluation, intelligence assessment, handling code."""

    source_evaluation: Literal[1, 2, 3]
    intelligence_assessment: Literal["A", "B", "C", "D", "E"]
    handling_code: Literal["P", "C"]


Assessment = Annotated[str, Field(min_length=1, max_length=1000)]


class Thrive(CpiModel):
    """THRIVE: threat, harm, risk, vulnerability, each in a sentence."""

    threat: Assessment
    harm: Assessment
    risk: Assessment
    vulnerability: Assessment


class RuleFiring(CpiModel):
    """One rule that fired: its id, why in plain English, and the words or fields that made it fire."""

    rule_id: Annotated[str, Field(min_length=1, max_length=100)]
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    evidence: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)] = []


ReviewCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class ReviewReason(CpiModel):
    """Why a person should check a decision: a stable code to queue and count on, and a plain sentence."""

    code: ReviewCode
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class Review(CpiModel):
    """Whether the rules' decision should be checked by a person before it is relied on, and why.

    The rules decide; the statistical second opinion only raises this flag, where it disagrees with them on
    an outcome or on high priority, or where the rules' evidence is thin. `scores` are its calibrated
    probabilities (crime_desk, safeguarding, no_action, high), for the reviewer and for measuring agreement.
    """

    needed: bool
    reasons: Annotated[list[ReviewReason], Field(max_length=20)] = []
    scores: Annotated[dict[Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")],
                           Annotated[float, Field(ge=0, le=1)]], Field(max_length=8)] = {}

    @model_validator(mode="after")
    def _needed_with_reasons(self) -> Review:
        if self.needed != bool(self.reasons):
            raise PydanticCustomError("review_reasons", "A review is needed exactly when it gives reasons.")
        return self


Outcomes = Annotated[list[Outcome], Field(min_length=1, max_length=4), AfterValidator(unique_items)]

# A reviewer's reason is written by an officer who may have seen a source's details (re-contact), and it travels
# with the decision to every downstream system. So it may not hold what identifies a person by contact: an e-mail
# address, a web or mail domain, a phone number (nine or more digits however grouped; a
# date's eight are not one). Names cannot be told
# apart by shape; officers are told (the review page says so) and the reason goes nowhere but the decision topics:
# never into a notification, a log line or a metric.
REVIEW_REASON_MIN, REVIEW_REASON_MAX = 10, 500
_CONTACT_SHAPES = (
    ("an e-mail address", re.compile(r"\S@\S")),
    ("a web address", re.compile(r"(?i)\b(?:https?://|www\.)|\b[a-z0-9-]+\.(?:com|org|net|gov|nhs|ac|sch|co|uk|"
                               r"police|edu|info|io)\b")),
    ("a phone number", re.compile(r"(?:\d[\s().+-]{0,2}){9,}")),
)


def _no_contact_details(value: str) -> str:
    value = refuse_control_characters(value)
    for kind, shape in _CONTACT_SHAPES:
        if shape.search(value):
            raise PydanticCustomError(
                "contact_detail_in_reason",
                "A review reason must not contain contact details (found what looks like a {kind}): say why the "
                "decision changed, never who shared the information.", {"kind": kind})
    return value


ReviewText = Annotated[str, Field(min_length=REVIEW_REASON_MIN, max_length=REVIEW_REASON_MAX), Normalised,
                       AfterValidator(_no_contact_details)]
"""A reviewer's written reason: 10-500 characters, no control characters, nothing shaped like contact details."""


class Assessed(CpiModel):
    """The part of a decision a handler may amend: outcomes, priority and grading."""

    outcomes: Outcomes
    priority: Priority
    grading: Grading

    @model_validator(mode="after")
    def _consistent(self) -> Assessed:
        _check_outcomes(self.outcomes, self.priority)
        return self


class ReviewAction(StrEnum):
    CONFIRMED = "confirmed"  # the handler agrees: same outcomes, priority and grading, now reviewed
    AMENDED = "amended"


class HandlerReview(CpiModel):
    """Who reviewed a decision, on which day (a date: nothing after the edge carries exact times), what they did
    and why, and what the revision before said (so a reader, and the notifier, can see what changed)."""

    action: ReviewAction
    officer_id: ShortText
    reason: ReviewText
    reviewed_on: PastDate
    previous: Assessed


def _check_outcomes(outcomes: list[Outcome], priority: Priority) -> None:
    if Outcome.NO_ACTION in outcomes and len(outcomes) > 1:
        raise PydanticCustomError("no_action_not_alone", "no_action cannot be combined with another outcome.")
    if (Outcome.NO_ACTION in outcomes) != (priority is Priority.NONE):
        raise PydanticCustomError("priority_mismatch", "Priority is none exactly when the outcome is no_action.")


class Decision(CpiModel):
    """cpi.outcome.decided.v1 and the per-outcome topics.

    One `decision_id` per intel's decision, kept across its revisions: revision 0 is the router's draft
    (provisional, `reviewed` absent: every decision made before reviews is one), and each handler's
    confirmation or amendment publishes the same decision_id with the next revision and `reviewed` set.
    Readers keep the highest revision per decision_id and deduplicate on (decision_id, revision).
    """

    decision_id: Identifier
    intel_id: Identifier
    outcomes: Outcomes
    priority: Priority
    grading: Grading
    thrive: Thrive
    rationale: Annotated[list[RuleFiring], Field(max_length=200)]
    rules_version: Annotated[str, Field(min_length=1, max_length=64)]
    intel: SanitisedIntel
    # Added within v1, optional so that decisions made before the second opinion still validate.
    model_version: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    review: Review | None = None
    # Added within v1 (optional: decisions from before reviews are revision 0, provisional).
    revision: Annotated[int, Field(ge=0, le=10_000)] = 0
    reviewed: HandlerReview | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        _check_outcomes(self.outcomes, self.priority)
        if (self.revision == 0) != (self.reviewed is None):
            raise PydanticCustomError("revision_review", "A decision is reviewed exactly when its revision is above 0.")
        if self.reviewed is not None:
            same = self.reviewed.previous == self.assessed
            if same != (self.reviewed.action is ReviewAction.CONFIRMED):
                raise PydanticCustomError("review_action", "A confirmation keeps outcomes, priority and grading; an "
                                          "amendment changes at least one.")
        return self

    @property
    def assessed(self) -> Assessed:
        return Assessed(outcomes=self.outcomes, priority=self.priority, grading=self.grading)

    @property
    def provisional(self) -> bool:
        """The router's draft, not yet confirmed or amended by a handler."""
        return self.reviewed is None


class DecisionReview(CpiModel):
    """cpi.decision.reviewed.v1: a handler's confirmation or amendment of one revision of a decision, written by the
    console. The router turns it into the next revision (`revised`) and publishes that, so that only the router
    writes decisions; `base` is the revision the handler saw."""

    base: Decision
    action: ReviewAction
    assessed: Assessed
    officer_id: ShortText
    reason: ReviewText
    reviewed_on: PastDate

    def revised(self) -> Decision:
        """The next revision of `base`: the same decision and intel, the handler's outcomes, priority and grading.
        Raises a ValidationError when the action does not fit (a "confirmation" that changes something)."""
        base = self.base
        return Decision.model_validate({
            **base.model_dump(mode="json"), **self.assessed.model_dump(mode="json"),
            "revision": base.revision + 1,
            "reviewed": {"action": self.action.value, "officer_id": self.officer_id, "reason": self.reason,
                         "reviewed_on": self.reviewed_on.isoformat(),
                         "previous": base.assessed.model_dump(mode="json")},
        })


@dataclass(frozen=True)
class Agreement:
    """How a handler's first review of a decision compares with the router's draft: the honest measure of the
    router in service. Under-triage, the costly error, is a high the router did not give."""

    outcomes_agreed: bool
    priority_agreed: bool
    under_triaged: bool


def agreement(draft: Assessed, handler: Assessed) -> Agreement:
    """The router's draft (revision 0) against a handler's first review of it."""
    return Agreement(
        outcomes_agreed=set(draft.outcomes) == set(handler.outcomes),
        priority_agreed=draft.priority is handler.priority,
        under_triaged=handler.priority is Priority.HIGH and draft.priority is not Priority.HIGH)
