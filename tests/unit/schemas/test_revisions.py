"""Revisions of a decision within Decision v1 (issue 12 step 3): the router's draft is revision 0 and provisional;
a handler's review makes the next revision of the same decision; the reviewer's reason cannot carry contact
details."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from schemas import Decision, DecisionReview
from schemas.export import rendered
from tests.decision_helpers import decision, review


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {error["type"] for error in exc.value.errors()}


def test_a_decision_from_before_revisions_is_revision_0_and_provisional() -> None:
    """A decision without the new fields (every one published before reviews) still validates, as the draft."""
    body = json.loads(decision("medium", ["crime_desk"], ["drug_related_harm"]).model_dump_json())
    del body["revision"], body["reviewed"]
    old = Decision.model_validate(body)
    assert (old.revision, old.reviewed, old.provisional) == (0, None, True)


def test_an_amendment_is_the_next_revision_of_the_same_decision() -> None:
    """The revision keeps decision and intel ids, rationale, THRIVE and intel; takes the handler's outcomes and
    priority; is reviewed; and says what the revision before it said."""
    base = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    revised = review(base, outcomes=["intelligence_log", "crime_desk", "safeguarding"], priority="high").revised()
    assert (revised.decision_id, revised.intel_id, revised.revision) == (base.decision_id, base.intel_id, 1)
    assert (revised.rationale, revised.thrive, revised.intel) == (base.rationale, base.thrive, base.intel)
    assert [o.value for o in revised.outcomes] == ["intelligence_log", "crime_desk", "safeguarding"]
    assert revised.priority.value == "high" and not revised.provisional
    assert revised.reviewed is not None and revised.reviewed.previous == base.assessed
    again = review(revised, action="confirmed").revised()
    assert again.revision == 2 and again.assessed == revised.assessed


def test_a_confirmation_is_a_reviewed_revision_with_nothing_changed() -> None:
    """Confirming publishes revision 1 with the same outcomes, priority and grading, marked reviewed."""
    base = decision("high", ["crime_desk"], ["organised_crime"])
    confirmed = review(base, action="confirmed").revised()
    assert confirmed.assessed == base.assessed and confirmed.revision == 1
    assert confirmed.reviewed is not None and confirmed.reviewed.action.value == "confirmed"


@pytest.mark.parametrize(("action", "outcomes"), [("confirmed", ["safeguarding"]), ("amended", None)])
def test_the_action_must_fit_what_changed(action: str, outcomes: list[str] | None) -> None:
    """A "confirmation" that changes the outcomes, or an "amendment" that changes nothing, is no revision."""
    base = decision("medium", ["crime_desk"], ["drug_related_harm"])
    with pytest.raises(ValidationError) as exc:
        review(base, action=action, outcomes=outcomes).revised()
    assert _errors(exc) == {"review_action"}


def test_revision_and_review_go_together() -> None:
    """A revision above 0 without a reviewer, or a reviewer on revision 0, is refused."""
    base = decision("medium", ["crime_desk"], ["drug_related_harm"])
    body = json.loads(review(base, action="confirmed").revised().model_dump_json())
    for change in ({"reviewed": None}, {"revision": 0}):
        with pytest.raises(ValidationError) as exc:
            Decision.model_validate({**body, **change})
        assert _errors(exc) == {"revision_review"}


def test_an_amendment_keeps_the_contracts_outcome_rules() -> None:
    """no_action stays alone, and priority none goes with no_action only, in an amendment too."""
    base = decision("medium", ["crime_desk"], ["drug_related_harm"])
    with pytest.raises(ValidationError) as exc:
        review(base, outcomes=["no_action", "crime_desk"], priority="none")
    assert "no_action_not_alone" in _errors(exc)
    with pytest.raises(ValidationError) as exc:
        review(base, outcomes=["no_action"], priority="low")
    assert "priority_mismatch" in _errors(exc)


@pytest.mark.parametrize("reason", [
    "Spoke to the referrer, jo.bloggs@school.sch.uk, who confirmed it.",
    "Confirmed by phone on 07700 900123 with the writer.",
    "Confirmed by phone on +44 (0)117 496 0000.",
    "Confirmed by phone on 0117-496-0000 extension nine.",
    "See www.stmarys-school.org for the setting.",
    "The writer's team is at greenfield.nhs.uk now.",
    "Their page https://example.test/about says so.",
])
def test_a_review_reason_cannot_carry_contact_details(reason: str) -> None:
    """The reason travels with the decision to every downstream system: an e-mail address, a phone number in any
    grouping, or a web address in it is refused, with a message that says why."""
    with pytest.raises(ValidationError) as exc:
        review(decision("medium", ["crime_desk"], ["drug_related_harm"]), action="confirmed", reason=reason)
    assert _errors(exc) == {"contact_detail_in_reason"}
    assert "never who shared the information" in str(exc.value)


@pytest.mark.parametrize("reason", [
    "Reviewed on 2026-12-04 with the crime desk; agreed as drafted.",
    "Weapons seen twice: high priority, crime desk and safeguarding (child aged 14).",
])
def test_a_review_reason_may_hold_dates_ages_and_plain_words(reason: str) -> None:
    """Dates (eight digits) and small numbers are not phone numbers: a plain reason is kept as written."""
    kept = review(decision("medium", ["crime_desk"], ["drug_related_harm"]), action="confirmed", reason=reason)
    assert kept.reason == reason


@pytest.mark.parametrize(("reason", "code"), [("Too short", "string_too_short"), ("x" * 501, "string_too_long"),
                                               ("A reason with a \x07 bell in it.", "control_character")])
def test_a_review_reason_is_bounded(reason: str, code: str) -> None:
    """10 to 500 characters, no control characters."""
    with pytest.raises(ValidationError) as exc:
        review(decision("medium", ["crime_desk"], ["drug_related_harm"]), action="confirmed", reason=reason)
    assert code in _errors(exc)


def test_the_review_day_is_a_date_not_in_the_future() -> None:
    """reviewed_on is a day (the JSON Schema says format date), and never a day to come."""
    schema = json.loads(rendered()["Decision.v1.json"])
    assert schema["$defs"]["HandlerReview"]["properties"]["reviewed_on"]["format"] == "date"
    with pytest.raises(ValidationError) as exc:
        review(decision("medium", ["crime_desk"], ["drug_related_harm"]), action="confirmed",
               reviewed_on=date.today() + timedelta(days=2))
    assert _errors(exc) == {"date_in_future"}


def test_a_review_record_round_trips_as_json() -> None:
    """What the console publishes, the router reads back unchanged."""
    made = review(decision("medium", ["crime_desk"], ["drug_related_harm"]), outcomes=["safeguarding"])
    assert DecisionReview.model_validate_json(made.model_dump_json()) == made


def test_only_the_router_writes_decisions_and_only_the_console_writes_reviews() -> None:
    """The console (cpi-iu) sends reviews to cpi.decision.reviewed.v1, which only the router reads; every topic
    whose value is a Decision is written by the router alone, so the teams are told only what it published."""
    from schemas.topics import ALL_TOPICS, IU, REVIEWED, ROUTER

    assert (REVIEWED.writers, REVIEWED.readers, REVIEWED.value_model) == ({IU}, {ROUTER}, DecisionReview)
    assert {spec.name: spec.writers for spec in ALL_TOPICS if spec.value_model is Decision} == {
        spec.name: frozenset({ROUTER}) for spec in ALL_TOPICS if spec.value_model is Decision}
    assert not REVIEWED.name.startswith("cpi.outcome.")  # downstream's prefix: reviews are not for it
