"""The Intelligence Unit console in headless Chromium (JavaScript off), as `cpi console` runs it, against a real
OpenID Connect provider, the real broker and the real sealed store.

One console for the module (its own topics, data dir and keys); each test signs in its own officers.
Pages, the console's log and its metrics are collected as the tests go; the last test checks that no
provenance appears in any of them but the audited re-contact view.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import AcceptedSubmission, Decision, HeldIntel, SanitisedIntel, Submission
from schemas.topics import AUDIT, DECIDED, HELD, IU, SANITISED
from services.common.kafka.acls import apply_acls
from services.common.kafka.admin import apply_topics
from services.common.kafka.broker import free_port
from services.common.kafka.principals import principal_env_file, read_env_file, security_environment
from services.common.keys import load_edge_keys, load_intake_keys, load_sanitiser_keys
from services.common.processes import stop_process, wait_until_ready
from services.common.serde import encode
from services.common.settings import PlatformSettings
from services.intake.receiving import received_record
from services.intake.worker import check_received
from services.sanitiser.adapters import open_sealed_store
from services.sanitiser.domain import REDACTION_MARKER, load_scrub_config
from services.sanitiser.residual import DEFAULT_HOLD_THRESHOLD
from services.sanitiser.worker import make_handler
from tests.browser.tools import axe_source, oidc_provider
from tests.decision_helpers import decision, review
from tests.kafka_helpers import produce, read_all, wait_for
from tests.key_helpers import key_settings

pytestmark = pytest.mark.kafka

# The source's identity: canaries that must appear on no console page but the re-contact view, and in
# no log line or metric at all.
SOURCE = {"name": "Wilhelmina Canarywood", "role": "Canary Outreach Lead", "organisation": "Canarywood Trust",
          "organisation_type": "voluntary_sector", "email": "w.canarywood@canarywood-trust.example",
          "phone": "07700 900123"}
CANARIES = ("Canarywood", "canarywood", "Wilhelmina", "07700 900123", "Canary Outreach")
# A third party's address: the residual-risk check holds the report for it.
THIRD_PARTY = "sam.lettings@riverside-lettings.co.uk"
REASON = "A safeguarding strategy meeting needs the referrer's first-hand account of the flat."


@dataclass
class Console:
    url: str
    metrics_url: str
    data_dir: Path
    settings: PlatformSettings
    log_file: Path
    pages: list[tuple[str, str]] = field(default_factory=list)  # (what, html) of every page the tests saw

    def seen(self, page: Any, what: str = "page") -> str:
        html: str = page.content()
        self.pages.append((what, html))
        return html

    def audit(self) -> list[tuple[str, str, str, str]]:
        """(action, actor, result, detail) of every audit entry, in order."""
        db = sqlite3.connect(self.data_dir / "sealed.db")
        try:
            return db.execute("SELECT action, actor, result, detail FROM sealed_audit ORDER BY seq").fetchall()
        finally:
            db.close()


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test's OpenID Connect provider (mock-oauth2-server, started with java)."""
    with oidc_provider(tmp_path_factory.mktemp("oidc") / "oidc.log") as running:
        yield running


@pytest.fixture(scope="module")
def console(kafka_bootstrap: str, issuer: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """`cpi console` in its own process, on free ports, with the held, sanitised and decided topics of its own;
    high and flagged decisions need review, within 1h if high and (so a test can see a breach) 2s if low."""
    data_dir = tmp_path_factory.mktemp("console")
    key_settings(data_dir)  # every key made, as `cpi up` makes them
    prefix = f"c{uuid.uuid4().hex[:10]}."
    settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)
    assert apply_topics(settings, (HELD, SANITISED, DECIDED, AUDIT)).ok  # AUDIT: every audit entry is anchored there
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": prefix,
           "CPI_DATA_DIR": str(data_dir), "CPI_CONSOLE_PORT": str(port), "CPI_CONSOLE_METRICS_PORT": str(metrics_port),
           "CPI_OIDC_ISSUER": issuer, "CPI_OIDC_CLIENT_SECRET": "console-test-secret", "CPI_LOG_FORMAT": "json",
           "CPI_LOG_LEVEL": "debug", "CPI_CONSOLE_REVIEW_TARGETS": "high=1h,medium=24h,low=2s",
           "CPI_CONSOLE_REVIEW_WHEN": "high_priority,flagged"}
    env_dir = Path(os.environ.get("CPI_KAFKA_ENV_DIR", "/nonexistent"))
    if (env_dir / "principals").is_dir():
        # On the secured broker the console runs as `cpi up` runs it: as cpi-iu, with only the registry's grants.
        apply_acls(settings)
        env = security_environment(env, read_env_file(principal_env_file(env_dir, IU)))
    log_file = data_dir / "console.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "console"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/healthz", process=process, timeout=90)
        yield Console(url, f"http://127.0.0.1:{metrics_port}/metrics", data_dir, settings, log_file)
    finally:
        stop_process(process)


def hold_one(console: Console, information: str) -> HeldIntel:
    """One submission through the edge's sealing, the intake worker and the sanitiser's own handler, with
    the console's keys and sealed store; the held record it makes is put on the console's held topic."""
    keys = key_settings(console.data_dir)
    sanitiser = load_sanitiser_keys(keys)
    assert sanitiser.store.unseal_public is not None
    submission = Submission.model_validate({
        "source": SOURCE, "lawful_basis": "safeguarding", "categories": ["modern_slavery"],
        "urgency": {"immediate_risk": False, "crime_in_progress": False}, "how_known": "witnessed_directly",
        "information": information})
    store = open_sealed_store(f"sqlite:///{console.data_dir / 'sealed.db'}", sanitiser.store)
    try:
        accepted = check_received(received_record(submission, load_edge_keys(keys)), load_intake_keys(keys))
        assert isinstance(accepted, AcceptedSubmission)
        handler = make_handler(sanitiser.transport, sanitiser.store.unseal_public, store, load_scrub_config(),
                               DEFAULT_HOLD_THRESHOLD)
        # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            [out] = pool.submit(asyncio.run, handler(encode(accepted))).result()
    finally:
        store.close()
    assert out.topic is HELD
    produce(console.settings.bootstrap, console.settings.topic(HELD.name), out.value, key=out.key)
    return HeldIntel.model_validate_json(out.value)


@pytest.fixture
def new_page(browser: Any, console: Console) -> Iterator[Any]:
    """Makes fresh pages, each in a context of its own (one officer each), JavaScript off."""
    contexts = []

    def make(*, javascript: bool = False) -> Any:
        context = browser.new_context(java_script_enabled=javascript, bypass_csp=javascript, base_url=console.url)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, console: Console, officer_id: str, roles: list[str], path: str = "/") -> None:
    """Open `path`, be sent to the provider, sign in there as `officer_id` with `roles`, land back on `path`."""
    page.goto(path)
    assert page.url.startswith(console.url) is False, "an unauthenticated page must send the browser to sign in"
    page.locator("input[name=username]").fill(officer_id)
    page.locator("textarea[name=claims]").fill(json.dumps({"roles": roles}))
    page.locator("input[type=submit]").click()
    assert page.url == f"{console.url}{path}"


def csrf_of(page: Any) -> str:
    token: str = page.locator("input[name=csrf_token]").first.get_attribute("value")
    return token


def test_an_unauthenticated_request_is_redirected_to_sign_in(console: Console, issuer: str, new_page: Any) -> None:
    """Without a session every page redirects to /signin, which sends the browser to the provider's authorize
    endpoint with PKCE; a POST without a session does nothing (401)."""
    with httpx.Client(base_url=console.url) as client:
        for path in ("/", "/queue", "/held", "/recontact"):
            answer = client.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/signin")
        start = client.get("/signin")
        assert start.status_code == 302
        assert start.headers["location"].startswith(f"{issuer}/authorize?")
        assert "code_challenge_method=S256" in start.headers["location"]
        assert client.post("/recontact", data={"intel_id": "0" * 32, "reason": REASON}).status_code == 401
    page = new_page()
    page.goto("/held")
    assert page.url.startswith(f"{issuer}/authorize")


def test_sign_in_gives_a_short_http_only_session_showing_the_officer_and_roles(console: Console,
                                                                            new_page: Any) -> None:
    """Signing in at the provider lands on the page asked for, names the officer and roles, and sets the
    session cookie HttpOnly, SameSite=Lax, Secure, expiring within the idle time; signing out ends it."""
    page = new_page()
    sign_in(page, console, "officer-home", ["iu_officer"])
    console.seen(page)
    assert page.get_by_text("Signed in as").inner_text().startswith("Signed in as officer-home")
    assert page.get_by_role("link", name="Held reports").first.is_visible()
    [cookie] = [c for c in page.context.cookies() if c["name"] == "cpi_console"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Lax", True)

    assert 0 < cookie["expires"] - time.time() <= 15 * 60 + 5
    page.get_by_role("button", name="Sign out").click()
    console.seen(page)
    assert page.get_by_role("heading", name="Signed out").is_visible()
    page.goto("/recontact")
    assert not page.url.startswith(console.url)


def test_an_officer_redacts_then_releases_a_held_report_to_the_sanitised_topic(console: Console,
                                                                            new_page: Any) -> None:
    """A held report is listed; opening it (with a reason) shows the text with the risk reason highlighted;
    redacting the address makes revision 2 with the marker in its place; releasing it puts the intel on
    cpi.intel.sanitised.v1 on the real broker, the held topic says released, and each step is audited
    with the signed-in officer's id."""
    held = hold_one(console, f"Six men sleep above the car wash on Dock Street. Their landlord is {THIRD_PARTY}.")
    page = new_page()
    sign_in(page, console, "officer-release", ["iu_officer"], "/held")
    console.seen(page)
    page.get_by_role("link", name=held.intel_id).click()
    console.seen(page)
    page.get_by_label("Why are you opening this report?").fill(REASON)
    page.get_by_role("button", name="Open the report").click()
    console.seen(page)
    mark = page.locator(".intel-text mark")
    assert mark.inner_text().startswith(THIRD_PARTY)
    assert "Dock Street" in page.locator(".intel-text").inner_text()

    page.get_by_label("Text to redact").fill(THIRD_PARTY)
    page.get_by_label("Why redact this?").fill("The landlord's address could lead back to the referrer.")
    page.get_by_role("button", name="Redact").click()
    console.seen(page)
    assert page.get_by_text("Redacted: revision 2.").is_visible()
    text = page.locator(".intel-text").inner_text()
    assert THIRD_PARTY not in text and REDACTION_MARKER in text

    page.get_by_label("Why is it safe to release?").fill("Redacted and checked: nothing identifies the source.")
    page.get_by_role("button", name="Release to the router").click()
    console.seen(page)
    assert page.get_by_role("heading", name="Released").is_visible()

    record = wait_for(console.settings.bootstrap, console.settings.topic(SANITISED.name),
                      lambda r: r.key == held.intel_id.encode())
    intel = SanitisedIntel.model_validate_json(record.value)
    assert THIRD_PARTY not in intel.information and "Dock Street" in intel.information
    states = [HeldIntel.model_validate_json(r.value) for r in read_all(console.settings.bootstrap,
                                                                     console.settings.topic(HELD.name))
              if r.key == held.intel_id.encode()]
    assert [(s.revision, s.status.value) for s in states] == [(1, "held"), (2, "redacted"), (3, "released")]
    mine = [(a, r) for a, actor, r, _ in console.audit() if actor == "officer-release"]
    assert mine == [("held_show", "granted"), ("held_redact", "granted"), ("held_release", "granted")]
    page.goto("/held")
    console.seen(page)
    assert page.get_by_role("link", name=held.intel_id).count() == 0


def publish_decisions(console: Console, *decisions: Decision) -> None:
    """Each decision on the console's cpi.outcome.decided.v1, keyed by intel id, as the router publishes it."""
    for made in decisions:
        produce(console.settings.bootstrap, console.settings.topic(DECIDED.name), made.model_dump_json().encode(),
                key=made.intel_id.encode())


def queued(page: Any, among: list[Decision]) -> list[str]:
    """Which of `among` the queue page lists, as decision ids, top to bottom."""
    wanted = {made.decision_id for made in among}
    cells = page.locator("table.queue tbody tr td:nth-child(2) code").all_inner_texts()
    return [cell for cell in cells if cell in wanted]


def wait_until_queued(page: Any, among: list[Decision], count: int) -> None:
    """Reload /queue until `count` of `among` are listed (the console's consumer reads them in its own time)."""
    deadline = time.monotonic() + 60
    while True:
        page.goto("/queue")
        if len(queued(page, among)) >= count:
            return
        assert time.monotonic() < deadline, "the console did not queue the published decisions within 60 s"
        time.sleep(0.5)


def test_a_handler_sees_decisions_to_review_by_priority_then_age_with_clocks_and_filters(console: Console,
                                                                                        new_page: Any) -> None:
    """Decisions published to cpi.outcome.decided.v1 on the real broker reach the queue of a handler signed in
    through the OIDC provider: only those needing review (high priority, or flagged by the router), high first and
    the older high before the newer, each with its clock (within the 1h high target; the low one past its 2s target,
    marked 'Breached' in words); the filter form (a GET, JavaScript off) narrows by category, status, outcome and
    priority, and its address can be bookmarked."""
    older = decision("high", ["crime_desk", "safeguarding"], ["child_sexual_exploitation"])
    flagged = decision("low", ["intelligence_log"], ["drug_related_harm"], review_codes=("rules_evidence_thin",))
    unflagged = decision("medium", ["safeguarding"], ["modern_slavery"])
    newer = decision("high", ["crime_desk"], ["modern_slavery"], review_codes=("model_doubts_crime_desk",))
    ours = [older, flagged, unflagged, newer]
    page = new_page()
    sign_in(page, console, "handler-queue", ["handler"], "/queue")
    publish_decisions(console, older, unflagged, flagged)
    wait_until_queued(page, ours, 2)
    publish_decisions(console, newer)  # after the others are queued: it has waited less
    wait_until_queued(page, ours, 3)
    time.sleep(2.5)  # the low decision's 2 s target passes
    page.goto("/queue")
    console.seen(page, "queue")
    assert queued(page, ours) == [older.decision_id, newer.decision_id, flagged.decision_id]
    assert unflagged.decision_id not in page.content()  # medium, not flagged: no review configured for it

    def row(made: Decision) -> Any:
        return page.locator("table.queue tbody tr", has=page.locator(f'code:text-is("{made.decision_id}")'))

    assert "left of 1h 00m" in row(older).inner_text() and "Breached" not in row(older).inner_text()
    assert "Breached by" in row(flagged).inner_text() and row(flagged).get_attribute("class") == "breached"
    assert "router flag: text model doubts crime desk" in row(newer).inner_text()

    page.get_by_label("Category").select_option("modern_slavery")
    page.get_by_role("button", name="Filter", exact=True).click()
    console.seen(page, "queue, filtered")
    assert "category=modern_slavery" in page.url
    assert queued(page, ours) == [newer.decision_id]
    page.get_by_label("Category").select_option("")
    page.get_by_label("Status").select_option("breached")
    page.get_by_role("button", name="Filter", exact=True).click()
    assert queued(page, ours) == [flagged.decision_id]
    page.goto("/queue?outcome=safeguarding&priority=high")
    assert queued(page, ours) == [older.decision_id]
    assert page.get_by_label("Outcome").input_value() == "safeguarding"


def test_a_handler_can_neither_open_held_reports_nor_request_recontact(console: Console, new_page: Any) -> None:
    """A handler signed in is refused the held pages (403), sees no re-contact form, and a re-contact
    request posted anyway with their own valid CSRF token is refused and audited; a post without the
    token is refused as a CSRF failure and does nothing."""
    held = hold_one(console, f"A boy of 14 is collected after school in a grey van; ask {THIRD_PARTY}.")
    page = new_page()
    sign_in(page, console, "handler-one", ["handler"])
    answer = page.goto("/held")
    console.seen(page)
    assert answer.status == 403 and page.get_by_role("heading", name="Not permitted").is_visible()
    assert page.goto(f"/held/{held.intel_id}").status == 403
    page.goto("/recontact")
    console.seen(page)
    assert page.get_by_text("Only Intelligence Unit officers may ask").is_visible()
    assert page.get_by_role("button", name="Request the details").count() == 0

    token = csrf_of(page)
    refused = page.request.post("/recontact", form={"csrf_token": token, "intel_id": held.intel_id, "reason": REASON})
    assert refused.status == 403 and "Only an Intelligence Unit officer" in refused.text()
    no_token = page.request.post("/recontact", form={"intel_id": held.intel_id, "reason": REASON})
    assert no_token.status == 403 and "This form has expired" in no_token.text()
    shown = page.request.post(f"/held/{held.intel_id}/show", form={"csrf_token": token, "reason": REASON})
    assert shown.status == 403 and THIRD_PARTY not in shown.text()
    mine = [(a, r) for a, actor, r, _ in console.audit() if actor == "handler-one"]
    assert mine == [("recontact_request", "denied:role_not_permitted"), ("held_show", "denied:role_not_permitted")]


def test_recontact_needs_another_supervisors_approval_and_shows_the_source_once(console: Console,
                                                                             new_page: Any) -> None:
    """An IU officer's request waits; a supervisor cannot approve their own request (refused, audited);
    another supervisor approves; the requester sees the source's details once, and a second view is
    refused; every request, approval, refusal and view is in the sealed store's audit chain, which verifies."""
    held = hold_one(console, f"Two girls are kept in a flat on Mill Lane and never go out. Agent: {THIRD_PARTY}.")
    officer = new_page()
    sign_in(officer, console, "officer-ask", ["iu_officer"], "/recontact")
    officer.get_by_label("Intel id").fill(held.intel_id)
    officer.get_by_label("Why do you need to contact the source?").fill(REASON)
    officer.get_by_role("button", name="Request the details").click()
    console.seen(officer)
    assert officer.get_by_text("waiting for a supervisor's approval").is_visible()
    assert officer.get_by_role("button", name="Show the details once").count() == 0

    senior = new_page()
    sign_in(senior, console, "super-own", ["iu_officer", "supervisor"], "/recontact")
    senior.get_by_label("Intel id").fill(held.intel_id)
    senior.get_by_label("Why do you need to contact the source?").fill(REASON)
    senior.get_by_role("button", name="Request the details").click()
    console.seen(senior)
    own = re.search(r'/recontact/([0-9a-f]{32})/view', senior.content())
    assert own is None  # pending: no view yet
    db = sqlite3.connect(console.data_dir / "console.db")
    own_id, asked_id = (db.execute("SELECT request_id FROM recontact_requests WHERE requester = ?", (who,))
                        .fetchone()[0] for who in ("super-own", "officer-ask"))
    db.close()
    assert senior.get_by_role("button", name=re.compile("super-own")).count() == 0  # own request not offered
    refused = senior.request.post(f"/recontact/{own_id}/approve", form={"csrf_token": csrf_of(senior)})
    assert refused.status == 403 and "Nobody may approve or refuse their own request" in refused.text()

    approver = new_page()
    sign_in(approver, console, "super-two", ["supervisor"], "/recontact")
    console.seen(approver)
    approver.get_by_role("button", name=f"Approve the request of officer-ask for {held.intel_id}").click()
    console.seen(approver)
    assert approver.get_by_text("The request has been approved.").is_visible()

    officer.goto("/recontact")
    console.seen(officer)
    officer.get_by_role("button", name="Show the details once").click()
    details = officer.content()
    console.pages.append(("recontact_view", details))
    assert SOURCE["name"] in details and SOURCE["email"] in details
    again = officer.request.post(f"/recontact/{asked_id}/view", form={"csrf_token": csrf_of(officer)})
    assert again.status == 403 and "shown once already" in again.text() and SOURCE["name"] not in again.text()

    steps = [(a, actor, r) for a, actor, r, d in console.audit()
             if json.loads(d or "{}").get("request_id") in {own_id, asked_id} or a == "unseal"]
    assert steps == [
        ("recontact_request", "officer-ask", "granted"), ("recontact_request", "super-own", "granted"),
        ("recontact_approve", "super-own", "denied:own_request"), ("recontact_approve", "super-two", "granted"),
        ("recontact_view", "officer-ask", "granted"), ("unseal", "officer-ask", "granted"),
        ("recontact_view", "officer-ask", "denied:already_viewed")]
    # The auditor's check: the store's log against the console's audit topic, every step anchored and signed.
    auditor = {"CPI_DATA_DIR": str(console.data_dir), "CPI_KAFKA_BOOTSTRAP": console.settings.bootstrap,
               "CPI_TOPIC_PREFIX": console.settings.topic_prefix}
    verified = subprocess.run([sys.executable, "-m", "services.cli", "sealed", "audit-verify"], capture_output=True,
                              text=True, env={**os.environ, **auditor}, check=False)
    assert verified.returncode == 0 and json.loads(verified.stdout.splitlines()[-1])["ok"] is True, verified.stderr


def test_every_console_page_has_no_accessibility_violations(console: Console, new_page: Any) -> None:
    """axe-core finds 0 violations on each console page: home, agreement, queues (an officer's with held reports, one
    filtered to nothing, a handler's), held list, open and review, released, re-contact (officer and supervisor
    views), the source details view, a refusal and the signed-out page."""
    axe = axe_source()
    held = hold_one(console, f"A man in a blue Astra sells cannabis outside the youth club. Contact {THIRD_PARTY}.")

    def check(page: Any, what: str) -> None:
        page.evaluate(axe)
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]] == [], what
        console.seen(page, what)

    draft = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    publish_decisions(console, decision("high", ["crime_desk"], ["criminal_exploitation"],
                                        review_codes=("model_suggests_safeguarding",)),
                      draft, review(draft, priority="high").revised())
    officer = new_page(javascript=True)
    sign_in(officer, console, "officer-axe", ["iu_officer"])
    check(officer, "home")
    officer.goto("/agreement")
    assert officer.get_by_role("table").count() == 2  # the feed has read the first review
    check(officer, "agreement")
    officer.goto("/queue")
    check(officer, "queues, officer (held reports listed)")
    officer.goto("/queue?status=breached&category=organised_crime")
    check(officer, "queues, filtered to nothing")
    officer.goto("/held")
    check(officer, "held list")
    officer.goto(f"/held/{held.intel_id}")
    check(officer, "held open")
    officer.get_by_label("Why are you opening this report?").fill(REASON)
    officer.get_by_role("button", name="Open the report").click()
    check(officer, "held review")
    officer.get_by_label("Why is it safe to release?").fill("Checked: nothing in it identifies the source.")
    officer.get_by_role("button", name="Release to the router").click()
    check(officer, "released")
    officer.goto("/recontact")
    officer.get_by_label("Intel id").fill(held.intel_id)
    officer.get_by_label("Why do you need to contact the source?").fill(REASON)
    officer.get_by_role("button", name="Request the details").click()
    check(officer, "re-contact, officer")

    supervisor = new_page(javascript=True)
    sign_in(supervisor, console, "super-axe", ["supervisor"], "/recontact")
    check(supervisor, "re-contact, supervisor")
    supervisor.get_by_role("button", name=f"Approve the request of officer-axe for {held.intel_id}").click()
    officer.goto("/recontact")
    officer.get_by_role("button", name="Show the details once").click()
    officer.evaluate(axe)
    result = officer.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert result["violations"] == []
    console.pages.append(("recontact_view", officer.content()))

    handler = new_page(javascript=True)
    sign_in(handler, console, "handler-axe", ["handler"], "/held")
    check(handler, "refusal")
    handler.goto("/queue")
    check(handler, "queues, handler")
    handler.get_by_role("button", name="Sign out").click()
    check(handler, "signed out")


def test_no_provenance_in_any_console_page_log_line_or_metric_but_the_recontact_view(console: Console) -> None:
    """Across everything the tests above did: the source's name, organisation, role, email and phone appear
    in no page but the audited re-contact view (where they must appear, so the check can fail), in no line
    of the console's log and in none of its metrics. (Runs last in this module.)"""
    views = [html for what, html in console.pages if what == "recontact_view"]
    others = [(what, html) for what, html in console.pages if what != "recontact_view"]
    assert views and all(SOURCE["name"] in html for html in views)
    assert len(others) >= 15
    for what, html in others:
        assert not [c for c in CANARIES if c in html], what
    log = console.log_file.read_text()
    assert "console_recontact_step" in log and "console_held_action" in log  # the log did record the steps
    assert not [c for c in CANARIES if c in log]
    metrics = httpx.get(console.metrics_url).text
    assert "cpi_console_recontact_total" in metrics
    # The supervisor's refused approval of their own request, counted where CpiRecontactRefused watches.
    assert 'cpi_console_recontact_refused_total{reason="own_request",step="approve"}' in metrics
    assert not [c for c in CANARIES if c in metrics]
