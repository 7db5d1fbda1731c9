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

    @model_validator(mode="after")
    def _no_action_alone(self) -> Decision:
        if Outcome.NO_ACTION in self.outcomes and len(self.outcomes) > 1:
            raise PydanticCustomError("no_action_not_alone", "no_action cannot be combined with another outcome.")
        if (Outcome.NO_ACTION in self.outcomes) != (self.priority is Priority.NONE):
            raise PydanticCustomError("priority_mismatch", "Priority is none exactly when the outcome is no_action.")
        return self
