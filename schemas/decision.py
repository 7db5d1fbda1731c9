"""Decision: the router's assessment of one piece of sanitised intelligence."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import CpiModel, Identifier, unique_items
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


class Decision(CpiModel):
    """cpi.outcome.decided.v1 and the per-outcome topics."""

    decision_id: Identifier
    intel_id: Identifier
    outcomes: Annotated[list[Outcome], Field(min_length=1, max_length=4), AfterValidator(unique_items)]
    priority: Priority
    grading: Grading
    thrive: Thrive
    rationale: Annotated[list[RuleFiring], Field(max_length=200)]
    rules_version: Annotated[str, Field(min_length=1, max_length=64)]
    intel: SanitisedIntel
    # Added within v1, optional so that decisions made before the second opinion still validate.
    model_version: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    review: Review | None = None

    @model_validator(mode="after")
    def _no_action_alone(self) -> Decision:
        if Outcome.NO_ACTION in self.outcomes and len(self.outcomes) > 1:
            raise PydanticCustomError("no_action_not_alone", "no_action cannot be combined with another outcome.")
        if (Outcome.NO_ACTION in self.outcomes) != (self.priority is Priority.NONE):
            raise PydanticCustomError("priority_mismatch", "Priority is none exactly when the outcome is no_action.")
        return self
