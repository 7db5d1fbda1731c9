"""The intake form in headless Chromium, JavaScript off, against the real edge and broker."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from schemas import ReceivedSubmission
from schemas.topics import RECEIVED
from services.common.days import utc_today
from tests.integration.intake.live import LiveApi
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka


def fill_valid(page: Any) -> None:
    page.get_by_label("Your full name").fill("Priya Canary")
    page.get_by_label("Your role or job title").fill("School nurse")
    page.get_by_label("Your organisation").fill("Hillside Canary School")
    page.get_by_label("Type of organisation").select_option("health")
    page.get_by_label("Your work email address").fill("priya.canary@hillside.example.org")
    page.get_by_label("Safeguarding children or adults at risk").check()
    page.get_by_label("Criminal exploitation (including county lines)").check()
    page.get_by_label("Tell us what you know").fill("A pupil says older boys pay him to carry packages after school.")
    page.get_by_label("The person it is about told me").check()
    page.get_by_label("Their role in this").select_option("at_risk")
    page.get_by_label("Approximate age in years").fill("13")


def test_a_filled_form_shows_the_receipt_and_reaches_the_topic(page: Any, api: LiveApi, kafka_bootstrap: str,
                                                              tmp_path: Path) -> None:
    """Fill every required field, send, see the reference and what happens next; one web record is produced."""
    page.goto("/")
    assert page.get_by_role("heading", name="If anyone is in immediate danger, call 999").is_visible()
    fill_valid(page)
    page.get_by_role("button", name="Send information").click()
    assert page.get_by_role("heading", name="Information sent").is_visible()
    reference = page.locator(".reference").inner_text()
    assert len(reference) == 32
    assert page.get_by_text("Your identity is protected").is_visible()
    for outcome in ("Intelligence log", "Crime desk", "Safeguarding", "No action"):
        assert page.get_by_text(outcome, exact=True).is_visible()
    page.screenshot(path=str(tmp_path / "receipt.png"), full_page=True)

    records = read_all(kafka_bootstrap, api.settings.topic(RECEIVED.name))
    assert len(records) == 1
    received = ReceivedSubmission.model_validate_json(records[0].value)
    assert received.received_on == utc_today()  # the day only: no exact time, no channel past the edge
    assert reference not in records[0].value.decode()
    assert b"Priya" not in records[0].value


def test_an_incomplete_form_shows_the_error_summary_and_keeps_values(page: Any, api: LiveApi,
                                                                    kafka_bootstrap: str) -> None:
    """Send with answers missing: a linked error summary, inline errors, what was typed still there; fix it, send."""
    page.goto("/")
    page.get_by_label("Your full name").fill("Priya Canary")
    page.get_by_label("Tell us what you know").fill("Too short")
    page.get_by_label("Criminal exploitation (including county lines)").check()
    page.get_by_role("button", name="Send information").click()

    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    assert summary.get_by_role("link", name="Enter your email address.").is_visible()
    assert summary.get_by_role("link", name="What you know must be at least 20 characters.").is_visible()
    assert page.get_by_label("Your full name").input_value() == "Priya Canary"
    assert page.get_by_label("Tell us what you know").input_value() == "Too short"
    assert page.get_by_label("Criminal exploitation (including county lines)").is_checked()
    email = page.get_by_label("Your work email address")
    assert email.get_attribute("aria-invalid") == "true"
    assert "Enter your email address." in page.locator("#source-email-error").inner_text()

    # The summary link takes keyboard users to the field.
    summary.get_by_role("link", name="Enter your email address.").click()
    assert page.evaluate("document.activeElement.id") == "source-email"
    assert read_all(kafka_bootstrap, api.settings.topic(RECEIVED.name)) == []

    fill_valid(page)
    page.get_by_role("button", name="Send information").click()
    assert page.get_by_role("heading", name="Information sent").is_visible()


def test_ticking_an_urgency_box_shows_the_999_message(page: Any, api: LiveApi, kafka_bootstrap: str) -> None:
    """Tick 'Someone is in immediate danger' and send: the page says call 999 now, and nothing is produced."""
    page.goto("/")
    fill_valid(page)
    page.get_by_label("Someone is in immediate danger").check()
    page.get_by_role("button", name="Send information").click()
    assert page.get_by_role("heading", name="Call 999 now").is_visible()
    assert page.get_by_label("Someone is in immediate danger").is_checked()
    assert read_all(kafka_bootstrap, api.settings.topic(RECEIVED.name)) == []


def test_add_another_person_works_without_javascript(page: Any, api: LiveApi) -> None:
    """'Add another person' re-renders the page with a second person, keeping what was typed."""
    page.goto("/")
    page.get_by_label("Full name (optional)", exact=True).fill("Jamie Example")
    page.get_by_role("button", name="Add another person").click()
    assert page.locator("#subjects-1").is_visible()
    assert page.locator("#subjects-0-name").input_value() == "Jamie Example"
    assert page.locator(".error-summary").count() == 0


def test_the_form_is_usable_by_keyboard(page: Any, api: LiveApi) -> None:
    """Tab reaches the skip link first, then the urgency checkboxes; Space ticks them."""
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "urgency-immediate_risk"
    page.keyboard.press("Space")
    assert page.locator("#urgency-immediate_risk").is_checked()


def test_screenshot_of_the_form(page: Any, api: LiveApi) -> None:
    """The form renders with its stylesheet applied (the CSP allows it) and can be captured for review."""
    page.set_viewport_size({"width": 1000, "height": 900})
    page.goto("/")
    border = page.locator(".urgent-screen").evaluate("e => getComputedStyle(e).borderTopWidth")
    assert border == "5px"
    target = Path(os.environ.get("CPI_SCREENSHOT_DIR", str(api.settings.data_dir)))
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / "form.png"), full_page=True)
    assert (target / "form.png").stat().st_size > 10_000
    json.dumps({})
