"""The console's pages, pure: every value escaped where it is written; only the re-contact view shows a source."""

from __future__ import annotations

from schemas import Source
from services.console import pages
from services.console.domain import Officer, RecontactRequest, RequestStatus

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
