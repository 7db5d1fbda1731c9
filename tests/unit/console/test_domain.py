"""The console's pure rules: roles from token claims, who may do what, the two-person rule, highlighting."""

from __future__ import annotations

import pytest

from schemas import Outcome, Priority
from services.console.domain import (
    Officer,
    RecontactRequest,
    RequestStatus,
    Segment,
    decision_refusal,
    highlight,
    needs_approval,
    request_refusal,
    roles_of,
    summarise_agreement,
    view_refusal,
)
from tests.decision_helpers import decision, review

INTEL = "0123456789abcdef0123456789abcdef"
REASON = "A strategy meeting needs the referrer's own account."


def officer(name: str, *roles: str) -> Officer:
    return Officer(name, frozenset(roles))


def code(refusal: tuple[str, str] | None) -> str | None:
    return None if refusal is None else refusal[0]


def request(requester: str = "ann", status: RequestStatus = RequestStatus.PENDING) -> RecontactRequest:
    return RecontactRequest("r" * 32, INTEL, requester, REASON, status)


@pytest.mark.parametrize(("claims", "roles"), [
    ({"roles": ["iu_officer", "supervisor"]}, {"iu_officer", "supervisor"}),
    ({"roles": "handler iu_officer"}, {"handler", "iu_officer"}),
    ({"roles": ["admin", "handler", 7]}, {"handler"}),
    ({"roles": {"supervisor": True}}, set()),
    ({}, set()),
])
def test_roles_come_from_the_claim_and_only_console_roles_count(claims: dict[str, object], roles: set[str]) -> None:
    """A list or a space-separated string; unknown roles and non-strings are ignored; anything else is no role."""
    assert roles_of(claims, "roles") == roles


def test_only_intelligence_unit_roles_open_held_intel_and_only_iu_officers_request() -> None:
    """A handler neither opens held intel nor requests re-contact; an IU officer does both; a supervisor
    opens held intel and decides, but requests only if also an IU officer."""
    handler, iu, supervisor = officer("h", "handler"), officer("i", "iu_officer"), officer("s", "supervisor")
    assert (handler.intelligence_unit, iu.intelligence_unit, supervisor.intelligence_unit) == (False, True, True)
    assert request_refusal(handler, INTEL, REASON, 20) == (
        "role_not_permitted", "Only an Intelligence Unit officer may request a source's details.")
    assert request_refusal(supervisor, INTEL, REASON, 20) is not None
    assert request_refusal(iu, INTEL, REASON, 20) is None
    assert supervisor.audit_role == "supervisor" and officer("x", "handler", "iu_officer").audit_role == "iu_officer"


@pytest.mark.parametrize(("intel_id", "reason", "code"), [
    ("not-an-id", REASON, "invalid_intel_id"),
    (INTEL.upper(), REASON, "invalid_intel_id"),
    (INTEL, "too short", "reason_too_short"),
    (INTEL, " " * 40, "reason_too_short"),
])
def test_a_request_needs_a_real_intel_id_and_a_written_reason(intel_id: str, reason: str, code: str) -> None:
    """Each bad field is refused with its own code and a message saying what to do."""
    refusal = request_refusal(officer("i", "iu_officer"), intel_id, reason, 20)
    assert refusal is not None and refusal[0] == code and refusal[1].endswith(".")


def test_nobody_decides_their_own_request_and_only_supervisors_decide_pending_ones() -> None:
    """The requester is refused even as a supervisor; another supervisor may; a decided request is not
    decided again; an IU officer may not decide at all."""
    assert code(decision_refusal(officer("ann", "supervisor", "iu_officer"), request("ann"))) == "own_request"
    assert decision_refusal(officer("bob", "supervisor"), request("ann")) is None
    assert code(decision_refusal(officer("bob", "supervisor"), request("ann", RequestStatus.REFUSED))) == "not_pending"
    assert code(decision_refusal(officer("bob", "iu_officer"), request("ann"))) == "role_not_permitted"
    assert code(decision_refusal(officer("bob", "supervisor"), None)) == "not_found"


def test_the_details_are_shown_once_to_the_requester_after_approval() -> None:
    """Only the requester, only when approved, never after a view."""
    ann = officer("ann", "iu_officer")
    assert view_refusal(ann, request("ann", RequestStatus.APPROVED)) is None
    assert code(view_refusal(officer("bob", "iu_officer"), request("ann", RequestStatus.APPROVED))) == "not_requester"
    assert code(view_refusal(ann, request("ann", RequestStatus.PENDING))) == "not_approved"
    assert code(view_refusal(ann, request("ann", RequestStatus.REFUSED))) == "not_approved"
    assert code(view_refusal(ann, request("ann", RequestStatus.VIEWED))) == "already_viewed"
    assert code(view_refusal(ann, None)) == "not_requester"


def test_the_two_person_rule_covers_every_request_or_all_but_a_supervisors() -> None:
    """Policy `all`: every request waits for approval; `not_supervisor`: a supervisor's own request does not."""
    iu, senior = officer("i", "iu_officer"), officer("s", "iu_officer", "supervisor")
    assert needs_approval("all", iu) and needs_approval("all", senior)
    assert needs_approval("not_supervisor", iu) and not needs_approval("not_supervisor", senior)


def test_highlight_marks_each_excerpt_in_any_case_and_merges_overlaps() -> None:
    """Every occurrence is marked with its reason's code; overlapping excerpts become one mark; an excerpt
    not in the text marks nothing; the segments join back to the text."""
    text = "Call Sam on 07700 900000 or SAM@x.example; sam@x.example knows."
    segments = highlight(text, [("email_address", "sam@x.example"), ("phone_number", "07700 900000"),
                                ("name_in_sign_off", "Sam on 07700"), ("web_address", "absent.example")])
    assert "".join(s.text for s in segments) == text
    assert [s for s in segments if s.code] == [Segment("Sam on 07700 900000", "name_in_sign_off"),
                                               Segment("SAM@x.example", "email_address"),
                                               Segment("sam@x.example", "email_address")]
    assert highlight("nothing here", []) == [Segment("nothing here")]


def test_agreement_is_summarised_under_triage_first_by_outcome_set_priority_and_outcome() -> None:
    """Three first reviews: one confirmed, one raised medium -> high with safeguarding added (under-triage), one
    lowered high -> medium with crime desk removed."""
    confirmed = decision("low", ["intelligence_log"], ["anti_social_behaviour"])
    raised = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    lowered = decision("high", ["intelligence_log", "crime_desk"], ["organised_crime"])
    pairs = [(confirmed.assessed, review(confirmed, action="confirmed").assessed),
             (raised.assessed, review(raised, outcomes=["intelligence_log", "crime_desk", "safeguarding"],
                                      priority="high").assessed),
             (lowered.assessed, review(lowered, outcomes=["intelligence_log"], priority="low").assessed)]
    summary = summarise_agreement(pairs)
    assert (summary.reviews, summary.outcomes_agreed, summary.priority_agreed, summary.under_triaged) == (3, 1, 1, 1)
    assert summary.priorities == {(Priority.LOW, Priority.LOW): 1, (Priority.MEDIUM, Priority.HIGH): 1,
                                  (Priority.HIGH, Priority.LOW): 1}
    assert summary.outcomes[Outcome.INTELLIGENCE_LOG] == (3, 0, 0)
    assert summary.outcomes[Outcome.CRIME_DESK] == (1, 1, 0)
    assert summary.outcomes[Outcome.SAFEGUARDING] == (0, 0, 1)
    assert summarise_agreement([]).reviews == 0
