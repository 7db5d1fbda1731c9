"""A handler's review of a decision, pure (issue 12 step 3): who may review, which form makes a review and which
is refused with a plain message for its field; the review page shows the whole decision, escaped, with the form
for handlers only; a reviewed decision leaves the queue."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from schemas import DecisionReview, ReviewAction
from services.console import pages
from services.console.domain import Officer, QueuedDecision, ReviewForm, review_grounds, review_of
from tests.decision_helpers import decision, review

HANDLER = Officer("officer-0042", frozenset({"handler"}))
TODAY = date(2026, 12, 4)
REASON = "A child is at risk at the address: safeguarding must see it."
BASE = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
AMEND = ReviewForm(action="amend", revision="0", reason=REASON, outcomes=("intelligence_log", "crime_desk",
                   "safeguarding"), priority="high", source_evaluation="2", intelligence_assessment="A",
                   handling_code="P")


def problems(form: ReviewForm, officer: Officer = HANDLER, latest: int = 0) -> dict[str, str]:
    made = review_of(BASE, latest, officer, form, TODAY)
    assert isinstance(made, list), "expected the form to be refused"
    return {p.field: p.message for p in made}


def test_an_amendment_form_makes_a_review_of_the_latest_revision() -> None:
    """Outcomes, priority and grading as chosen, by the signed-in officer, today, of the revision they saw."""
    made = review_of(BASE, 0, HANDLER, replace(AMEND, intelligence_assessment="B"), TODAY)
    assert isinstance(made, DecisionReview)
    assert (made.action, made.officer_id, made.reviewed_on, made.base) == (ReviewAction.AMENDED, "officer-0042",
                                                                           TODAY, BASE)
    assert [o.value for o in made.assessed.outcomes] == ["intelligence_log", "crime_desk", "safeguarding"]
    assert (made.assessed.priority.value, made.assessed.grading.intelligence_assessment) == ("high", "B")


def test_a_confirmation_ignores_the_amendment_fields() -> None:
    """Confirm keeps what the revision says, whatever the amendment fields hold."""
    made = review_of(BASE, 0, HANDLER, replace(AMEND, action="confirm"), TODAY)
    assert isinstance(made, DecisionReview) and made.assessed == BASE.assessed
    assert made.revised().reviewed is not None


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"reason": "  "}, "reason", "at least 10 characters"),
    ({"reason": "x" * 501}, "reason", "500 characters at most"),
    ({"reason": "Rang the teacher on 07700 900123 to check."}, "reason", "contact details"),
    ({"outcomes": ()}, "outcomes", "at least one outcome"),
    ({"outcomes": ("no_action", "crime_desk"), "priority": "none"}, "outcomes", "no_action cannot be combined"),
    ({"outcomes": ("crime_desk",), "priority": "none"}, "outcomes", "Priority is none exactly"),
    ({"priority": "urgent"}, "priority", "values offered"),
    ({"source_evaluation": "7"}, "source_evaluation", "values offered"),
    ({"handling_code": "X"}, "handling_code", "values offered"),
    ({"outcomes": ("intelligence_log", "crime_desk"), "priority": "medium"}, "outcomes", "changes nothing"),
    ({"action": "delete"}, "action", "confirm the decision or to amend"),
    ({"revision": "1"}, "revision", "reviewed since you opened it"),
])
def test_a_bad_form_is_refused_with_a_message_for_its_field(change: dict[str, object], field: str,
                                                            words: str) -> None:
    """Every bad input names its field and says what to do; nothing is made to publish."""
    found = problems(replace(AMEND, **change))
    assert words in found[field]


def test_only_a_handler_may_review() -> None:
    """An IU officer or supervisor without the handler role is refused."""
    assert "Only a handler" in problems(AMEND, Officer("sup-1", frozenset({"iu_officer", "supervisor"})))["action"]


def test_a_reviewed_decision_leaves_the_queue() -> None:
    """Revision 1 or later needs no review, whatever the criteria."""
    item = QueuedDecision("d" * 32, "1" * 32, "high", ("crime_desk",), ("organised_crime",), ("model_doubts_high",),
                          datetime(2026, 12, 4, tzinfo=UTC))
    criteria = frozenset({"all", "high_priority", "flagged"})
    assert review_grounds(item, criteria) and review_grounds(replace(item, revision=1), criteria) == ()


HOSTILE = '<script>alert("x")</script>'


def test_the_review_page_shows_the_decision_escaped_with_the_form_for_handlers_only() -> None:
    """Intel text, rationale, THRIVE, grading and a reviewed revision's reason appear as text, never markup; the
    form posts the CSRF token and the revision seen; someone who is not a handler sees no form."""
    hostile = decision("medium", ["crime_desk"], ["drug_related_harm"], information=HOSTILE + " sells drugs daily.")
    revised = review(hostile, action="confirmed", reason=HOSTILE + " agreed.").revised()
    html = pages.decision_review(HANDLER, "tok-9", revised)
    assert "<script>" not in html and html.count("&lt;script&gt;") == 2
    for shown in ("Rationale", "THRIVE", "2AP", "Revision", "Reviewed: confirmed by officer-0042", "drug related harm"):
        assert shown in html
    assert 'name="csrf_token" value="tok-9"' in html and 'name="revision" value="1"' in html
    assert 'value="confirm"' in html and 'value="amend"' in html
    other = pages.decision_review(Officer("iu-1", frozenset({"iu_officer"})), "tok-9", revised)
    assert 'method="post" action="/decisions/' not in other


def test_a_refused_form_is_shown_again_with_what_was_typed_and_the_problems() -> None:
    """The handler keeps their reason and choices, and an error summary links to each field."""
    form = replace(AMEND, reason="Too short")
    found = review_of(BASE, 0, HANDLER, form, TODAY)
    assert isinstance(found, list)
    html = pages.decision_review(HANDLER, "tok", BASE, form=form, problems=found)
    assert 'role="alert"' in html and 'href="#reason"' in html and ">Too short</textarea>" in html
    assert 'id="outcomes-safeguarding" name="outcomes" value="safeguarding" checked' in html


def test_a_reason_refused_for_contact_details_is_not_shown_again() -> None:
    """A reason holding an e-mail address is refused and the page does not echo it (it may reach a source)."""
    form = replace(AMEND, reason="Spoke to the teacher at jo.bloggs@school.example about it.")
    found = review_of(BASE, 0, HANDLER, form, TODAY)
    assert isinstance(found, list) and {p.code for p in found} == {"contact_detail_in_reason"}
    html = pages.decision_review(HANDLER, "tok", BASE, form=form, problems=found)
    assert "jo.bloggs" not in html and "contact details" in html
