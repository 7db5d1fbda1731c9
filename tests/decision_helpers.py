"""Decisions as the router publishes them, for tests of what reads cpi.outcome.decided.v1."""

from __future__ import annotations

import uuid
from datetime import date

from schemas import Decision, DecisionReview


def decision(priority: str, outcomes: list[str], categories: list[str], *, review_codes: tuple[str, ...] = (),
             information: str = "A man sells cannabis from a blue Astra outside the youth club.") -> Decision:
    """A valid decision with fresh ids; flagged for review with `review_codes` when any are given."""
    review = {"needed": bool(review_codes),
              "reasons": [{"code": code, "reason": f"Flagged: {code}."} for code in review_codes]}
    intel_id = uuid.uuid4().hex
    return Decision.model_validate({
        "decision_id": uuid.uuid4().hex, "intel_id": intel_id, "outcomes": outcomes, "priority": priority,
        "grading": {"source_evaluation": 2, "intelligence_assessment": "A", "handling_code": "P"},
        "thrive": {"threat": "t", "harm": "h", "risk": "r", "vulnerability": "v"},
        "rationale": [{"rule_id": "test_rule", "reason": "A test decision."}], "rules_version": "test-1",
        "intel": {"intel_id": intel_id, "received_on": date.today().isoformat(), "categories": categories,
                  "information": information, "how_known": "witnessed_directly", "lawful_basis": "safeguarding",
                  "redaction_count": 0},
        "model_version": "test-model", "review": review})


def review(base: Decision, *, action: str = "amended", outcomes: list[str] | None = None, priority: str | None = None,
           officer_id: str = "officer-0042", reason: str = "Reviewed against the full intelligence picture.",
           reviewed_on: date | None = None) -> DecisionReview:
    """A handler's review of `base`: by default an amendment to `outcomes`/`priority` (else a confirmation)."""
    assessed = base.assessed.model_dump(mode="json")
    if outcomes is not None:
        assessed["outcomes"] = outcomes
    if priority is not None:
        assessed["priority"] = priority
    return DecisionReview.model_validate({"base": base, "action": action, "assessed": assessed,
                                          "officer_id": officer_id, "reason": reason,
                                          "reviewed_on": reviewed_on or date.today()})
