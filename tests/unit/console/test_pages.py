"""The console's pages, pure: every value escaped where it is written; only the re-contact view shows a source;
the queue page marks breaches in words and keeps its GET filters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from schemas import HeldIntel, HeldStatus, Source
from services.console import pages
from services.console.domain import (
    Officer,
    QueuedDecision,
    QueueFilter,
    QueueRow,
    RecontactRequest,
    RequestStatus,
    review_queue,
    summarise_agreement,
)
from services.sanitiser import residual
from tests.decision_helpers import decision, review

HOSTILE = '<script>alert("x")</script>'
INTEL = "0123456789abcdef0123456789abcdef"


def test_officer_ids_and_reasons_are_escaped_on_the_recontact_page() -> None:
    """An officer id or a reason holding markup is shown as text, never as markup, and each form has the CSRF token."""
    officer = Officer(HOSTILE, frozenset({"iu_officer", "supervisor"}))
    other = RecontactRequest("a" * 32, INTEL, HOSTILE + "2", HOSTILE, RequestStatus.PENDING)
    mine = RecontactRequest("b" * 32, INTEL, HOSTILE, HOSTILE, RequestStatus.APPROVED)
    html = pages.recontact(officer, "tok-123", [mine], [other, mine])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count('name="csrf_token" value="tok-123"') == html.count('method="post"')
    assert html.count("/approve") == 1  # the officer's own request is not offered for approval


def test_only_the_recontact_view_shows_the_source() -> None:
    """The details page lists the source's fields (escaped); the page that asks for them does not."""
    source = Source.model_validate({"name": "Ada <b>Lovel</b>", "role": "Teacher", "organisation": "Hill School",
                                    "organisation_type": "education", "email": "ada@hill.example"})
    officer = Officer("officer-a", frozenset({"iu_officer"}))
    request = RecontactRequest("a" * 32, INTEL, "officer-a", "reason " * 5, RequestStatus.APPROVED)
    details = pages.recontact_details(officer, "tok", request, source)
    assert "Ada &lt;b&gt;Lovel&lt;/b&gt;" in details and "ada@hill.example" in details
    asking = pages.recontact(officer, "tok", [request], [])
    assert "Lovel" not in asking and "ada@hill.example" not in asking


def _row(decision_id: str, priority: str, waited_minutes: int, codes: tuple[str, ...] = ()) -> QueueRow:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    item = QueuedDecision(decision_id, INTEL, priority, ("crime_desk",), ("modern_slavery",), codes,
                          now - timedelta(minutes=waited_minutes))
    [row] = review_queue([item], criteria=frozenset({"all"}), targets={"high": timedelta(hours=1)}, now=now)
    return row


def test_the_queue_page_marks_breaches_in_words_and_keeps_the_chosen_filters() -> None:
    """A breached decision says 'Breached' with by how much (not colour alone); one within target says the time
    left; the filter form is a GET whose selects keep the chosen values; an officer id with markup is escaped."""
    officer = Officer(HOSTILE, frozenset({"handler"}))
    rows = [_row("d" * 32, "high", 95, ("model_doubts_crime_desk",)), _row("e" * 32, "high", 20)]
    html = pages.queues(officer, "tok", rows, QueueFilter(category="modern_slavery", priority="high"), None,
                        today=date(2026, 3, 2), criteria=frozenset({"flagged", "high_priority"}),
                        targets={"low": timedelta(days=3), "high": timedelta(hours=1)})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<tr class="breached">' in html and "Breached</strong> by 35m (target 1h 00m)" in html
    assert "40m left of 1h 00m" in html and "router flag: text model doubts crime desk" in html
    assert '<form method="get" action="/queue"' in html
    assert '<option value="modern_slavery" selected>' in html and '<option value="high" selected>' in html
    assert "2 decisions waiting, 1 past target." in html
    assert "Decisions needing review: flagged, high priority. Targets: high 1h 00m, low 3d 0h." in html
    assert "Held reports are for Intelligence Unit officers." in html


def test_the_queue_page_lists_held_reports_for_the_intelligence_unit_with_days_waiting() -> None:
    """An IU officer sees each held report linked to its held page, with the days it has waited; with none, says so."""
    # Constructed without its sealed envelope: the page reads only the topic's readable fields.
    held = HeldIntel.model_construct(intel_id=INTEL, held_on=date(2026, 2, 27), revision=2,
                                     status=HeldStatus.REDACTED, score=0.7, reason_codes=["email_address"])
    officer = Officer("officer-a", frozenset({"iu_officer"}))
    html = pages.queues(officer, "tok", [], QueueFilter(), [held], today=date(2026, 3, 2))
    assert f'<a href="/held/{INTEL}">{INTEL}</a></td><td>2026-02-27</td><td>3</td><td>redacted</td>' in html
    assert "No decisions are waiting" in html
    assert "No reports are held for review." in pages.queues(officer, "tok", [], QueueFilter(), [],
                                                             today=date(2026, 3, 2))


def test_the_queue_page_warns_when_its_decisions_may_be_out_of_date() -> None:
    """When the feed has not reached Kafka lately the page says, as an alert, that the queue may be stale: an
    empty queue must not look like nothing to review."""
    officer = Officer("handler-a", frozenset({"handler"}))
    stale = pages.queues(officer, "tok", [], QueueFilter(), None, today=date(2026, 3, 2), stale=True)
    assert 'role="alert"' in stale and "may be out of date" in stale
    assert "may be out of date" not in pages.queues(officer, "tok", [], QueueFilter(), None, today=date(2026, 3, 2))


def test_every_residual_risk_code_is_explained_in_words() -> None:
    """Each reason the sanitiser can hold a report for is shown to the officer in words, not as a code."""
    assert set(pages.REASON_CODES) == residual.CODES


def test_the_agreement_page_leads_with_under_triage_and_shows_where_priorities_moved() -> None:
    """Under-triage comes first; the priority table has the router's rows and the handler's columns; with no
    review yet the page says so rather than dividing by nothing."""
    officer = Officer("handler-1", frozenset({"handler"}))
    draft = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    raised = review(draft, priority="high")
    html = pages.agreement(officer, "csrf", summarise_agreement([(draft.assessed, raised.assessed)]))
    assert html.index("under-triaged") < html.index("Outcome sets agreed")
    assert "1 of 1 (100.0%)" in html and '<th scope="row">medium</th><td>1</td>' in html
    assert "none yet" in pages.agreement(officer, "csrf", summarise_agreement([]))
