"""Reviewing a decision in the Intelligence Unit console (issue 12 step 3), in headless Chromium (JavaScript off)
against the real OIDC provider and the real broker: a handler opens a decision from the queue, is refused with
clear errors, amends it with a reason, confirms another; each review reaches cpi.decision.reviewed.v1, the
router's review stage makes the revision, and the console shows it reviewed and off the queue. axe-core finds no
violations on the review page; no provenance reaches a page, the console's log or its metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from schemas import Decision, DecisionReview
from schemas.topics import DECIDED, REVIEWED
from services.common.kafka.admin import apply_topics
from services.router.worker import make_review_handler
from tests.browser import test_console
from tests.browser.test_console import CANARIES, SOURCE, Console, publish_decisions, sign_in, wait_until_queued
from tests.browser.tools import axe_source
from tests.decision_helpers import decision
from tests.kafka_helpers import read_all, wait_for

pytestmark = pytest.mark.kafka

# The console module's fixtures: a console (and provider) of this module's own, started the same way.
console, issuer, new_page = test_console.console, test_console.issuer, test_console.new_page

REASON = "The child is 14 and the flat is used for supply: safeguarding must see it, high priority."


@pytest.fixture(scope="module", autouse=True)
def reviewed_topic(console: Console) -> Iterator[None]:
    """The console's prefix has the reviews topic too (cpi-iu may write it, not create it)."""
    assert apply_topics(console.settings, (REVIEWED,)).ok
    yield


def review_sent(console: Console, made: Decision) -> DecisionReview:
    record = wait_for(console.settings.bootstrap, console.settings.topic(REVIEWED.name),
                      lambda r: DecisionReview.model_validate_json(r.value).base.decision_id == made.decision_id)
    assert record.key == made.intel_id.encode()
    return DecisionReview.model_validate_json(record.value)


def route_as_the_router(console: Console, review: DecisionReview) -> Decision:
    """The router's own review stage on the record, its revision published to the console's decided topic."""
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps an event loop running in this thread
        outputs = pool.submit(asyncio.run, make_review_handler()(review.model_dump_json().encode())).result()
    [revision] = [Decision.model_validate_json(out.value) for out in outputs if out.topic is DECIDED]
    publish_decisions(console, revision)
    return revision


def reload_until(page: Any, path: str, text: str) -> None:
    for _ in range(120):
        page.goto(path)
        if text in page.content():
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{path} never showed {text!r}")


def test_a_handler_amends_a_decision_with_a_reason_and_confirms_another(console: Console, new_page: Any) -> None:
    """From the queue a handler opens a high-priority decision and sees its intel, rationale, THRIVE and grading;
    a reason too short is held by the browser, an amendment that changes nothing is refused with the problem
    named and the reason kept; amending the
    outcomes and grading with a reason sends a review (the decision as seen, what was chosen, the officer, the
    day) keyed by intel id; the router's revision 1 comes back and the page says reviewed, and it leaves the
    queue. Confirming another sends a confirmation of the same outcomes. An IU officer without the handler role
    is refused (403) even with a valid CSRF token."""
    first = decision("high", ["intelligence_log", "crime_desk"], ["criminal_exploitation"],
                     information="Two boys aged 14 are seen running bags from flat 3, Mill Court, every evening.")
    second = decision("high", ["crime_desk"], ["organised_crime"])
    publish_decisions(console, first, second)
    page = new_page()
    sign_in(page, console, "handler-review", ["handler"], "/queue")
    wait_until_queued(page, [first, second], 2)
    page.get_by_role("link", name=first.decision_id).click()
    html = console.seen(page, "review page")
    for shown in ("Mill Court", "Rationale", "THRIVE", "2AP", "Provisional"):
        assert shown in html

    page.get_by_label("Why (required)").fill("Too short")  # the browser's own check (minlength) keeps it here
    page.get_by_role("button", name="Amend the decision").click()
    assert page.url.endswith(f"/decisions/{first.decision_id}") and "Nothing was sent" not in page.content()
    page.get_by_label("Why (required)").fill("Looked at it again today.")
    page.get_by_role("button", name="Amend the decision").click()
    html = console.seen(page, "review refused")
    assert "Nothing was sent" in html and "changes nothing" in html
    assert page.get_by_label("Why (required)").input_value() == "Looked at it again today."

    page.get_by_label("Why (required)").fill(REASON)
    page.get_by_label("safeguarding").check()
    page.get_by_label("Intelligence assessment").select_option("B")
    page.get_by_role("button", name="Amend the decision").click()
    console.seen(page, "review sent")
    assert page.get_by_role("heading", name="Review sent").is_visible()
    sent = review_sent(console, first)
    assert (sent.base, sent.action.value, sent.officer_id, sent.reason) == (first, "amended", "handler-review", REASON)
    assert [o.value for o in sent.assessed.outcomes] == ["intelligence_log", "crime_desk", "safeguarding"]
    assert sent.assessed.grading.intelligence_assessment == "B"

    revision = route_as_the_router(console, sent)
    assert (revision.decision_id, revision.revision) == (first.decision_id, 1)
    reload_until(page, f"/decisions/{first.decision_id}", "Reviewed: amended by handler-review")
    console.seen(page, "reviewed decision")
    page.goto("/queue")
    assert first.decision_id not in page.content() and second.decision_id in page.content()

    page.get_by_role("link", name=second.decision_id).click()
    page.get_by_label("Why (required)").fill("Checked against the rules and the intel: agreed as drafted.")
    page.get_by_role("button", name="Confirm the decision as it is").click()
    console.seen(page, "confirmation sent")
    confirmed = review_sent(console, second)
    assert confirmed.action.value == "confirmed" and confirmed.assessed == second.assessed

    officer = new_page()
    sign_in(officer, console, "officer-not-handler", ["iu_officer"], f"/decisions/{second.decision_id}")
    assert "Amend the decision" not in console.seen(officer, "review page, not a handler")
    token = officer.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = officer.request.post(f"/decisions/{second.decision_id}/review", form={
        "csrf_token": token, "action": "confirm", "revision": "0", "reason": "I am not a handler at all."})
    assert answer.status == 403 and "Only a handler" in answer.text()


def test_the_review_page_has_no_accessibility_violations(console: Console, new_page: Any) -> None:
    """axe-core finds 0 violations on the review page, fresh and with its error summary."""
    made = decision("high", ["crime_desk", "safeguarding"], ["child_sexual_exploitation"])
    publish_decisions(console, made)
    page = new_page(javascript=True)
    sign_in(page, console, "handler-review-axe", ["handler"], "/queue")
    wait_until_queued(page, [made], 1)
    axe = axe_source()

    def check(what: str) -> None:
        page.evaluate(axe)
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        assert [v["id"] for v in result["violations"]] == [], what
        console.seen(page, what)

    page.goto(f"/decisions/{made.decision_id}")
    check("review page")
    page.get_by_label("Why (required)").fill("Nothing changes in this one.")
    page.get_by_role("button", name="Amend the decision").click()
    assert page.get_by_text("Nothing was sent").is_visible()
    check("review page with errors")


def test_a_reason_with_the_sources_contact_details_is_refused_and_reaches_no_page_log_or_metric(
        console: Console, new_page: Any) -> None:
    """The canary: a handler who types the source's e-mail or phone into a reason is refused, the page does not
    echo it, and nothing was sent; then across every page these tests saw, the console's log and its metrics, no
    value of the source appears."""
    made = decision("high", ["crime_desk"], ["modern_slavery"])
    publish_decisions(console, made)
    page = new_page()
    sign_in(page, console, "handler-canary", ["handler"], "/queue")
    wait_until_queued(page, [made], 1)
    for typed in (f"Confirmed with {SOURCE['email']} today.", f"Rang {SOURCE['phone']} and they agreed."):
        page.goto(f"/decisions/{made.decision_id}")
        page.get_by_label("Why (required)").fill(typed)
        page.get_by_role("button", name="Confirm the decision as it is").click()
        html = console.seen(page, "reason refused")
        assert "must not contain contact details" in html and "Nothing was sent" in html
    # The console answers only once the broker has a review it sends, so none of these was.
    assert not [r for r in read_all(console.settings.bootstrap, console.settings.topic(REVIEWED.name))
                if made.decision_id.encode() in r.value]
    pages = [(what, html) for what, html in console.pages if what != "recontact_view"]
    assert len(pages) >= 8
    leaks = [(what, c) for what, html in pages for c in CANARIES if c in html]
    log = console.log_file.read_text()
    assert "console_review_sent" in log and "console_review_refused" in log
    leaks += [("log", c) for c in CANARIES if c in log]
    metrics = httpx.get(console.metrics_url).text
    assert 'cpi_console_decision_reviews_total{action="confirm",result="invalid"}' in metrics
    leaks += [("metrics", c) for c in CANARIES if c in metrics]
    assert leaks == []
