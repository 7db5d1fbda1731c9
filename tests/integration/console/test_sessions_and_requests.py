"""The console app in process with a real SQLite sealed store, request queue and review queue: sessions that end,
CSRF on every POST, re-contact steps in the sealed store's audit chain, and the review queue's GET filters.
(Sign-in itself, against a real OIDC provider, and the pages in a browser are tests/browser/test_console.py.)"""

from __future__ import annotations

import json
import time
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from services.common.keys import load_unseal_keys
from services.console.adapters.decisions import ReviewQueue
from services.console.adapters.held import HeldReview
from services.console.adapters.requests import RecontactRequests
from services.console.app import SESSION_COOKIE, create_console
from services.console.domain import RequestStatus
from services.console.settings import ConsoleSettings
from services.sanitiser.adapters import open_sealed_store
from services.sanitiser.adapters.sealed_store import SealedStore
from tests.decision_helpers import decision
from tests.key_helpers import key_settings

SECRET = "console-test-session-secret-0123456789"
INTEL = "0123456789abcdef0123456789abcdef"
REASON = "A strategy meeting needs the referrer's first-hand account."


@dataclass
class App:
    client: TestClient
    store: SealedStore
    requests: RecontactRequests
    decisions: ReviewQueue


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """The console over a fresh sealed store and queue; no identity provider is configured."""
    key_settings(tmp_path)
    settings = ConsoleSettings(data_dir=tmp_path, console_session_secret=SECRET, console_cookie_secure=False,  # type: ignore[arg-type]
                               console_review_when="high_priority,flagged")
    keys = load_unseal_keys(settings)
    store = open_sealed_store(f"sqlite:///{tmp_path / 'sealed.db'}", keys)
    requests = RecontactRequests(tmp_path / "console.db")
    decisions = ReviewQueue(tmp_path / "console.db")
    console = create_console(settings, store=store, held=HeldReview(settings, keys, store), requests=requests,
                             decisions=decisions)
    with TestClient(console, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield App(client, store, requests, decisions)
    decisions.close()
    requests.close()
    store.close()


def session_cookie(secret: str = SECRET, **fields: object) -> dict[str, str]:
    """A session cookie as the console's middleware signs it."""
    data = {"officer_id": "officer-a", "roles": ["iu_officer"], "since": time.time(), "csrf": "t" * 43, **fields}
    signed = TimestampSigner(secret).sign(b64encode(json.dumps(data).encode())).decode()
    return {"cookie": f"{SESSION_COOKIE}={signed}"}


def test_a_signed_in_session_is_renewed_on_each_request_and_ends_at_its_maximum(app: App) -> None:
    """A current session sees the page and gets its cookie renewed for the idle time (15 minutes); one signed
    in longer ago than the maximum (8 hours) is sent to sign in again, however recently it was used."""
    fresh = app.client.get("/recontact", headers=session_cookie())
    assert fresh.status_code == 200 and "Signed in as" in fresh.text
    renewed = fresh.headers["set-cookie"]
    assert renewed.startswith(f"{SESSION_COOKIE}=") and "Max-Age=900" in renewed and "httponly" in renewed.lower()
    stale = app.client.get("/recontact", headers=session_cookie(since=time.time() - 8 * 3600 - 1))
    assert (stale.status_code, stale.headers["location"]) == (303, "/signin")


def test_a_cookie_not_signed_with_the_consoles_secret_is_no_session(app: App) -> None:
    """A session cookie forged with another secret (say, claiming the supervisor role) signs nobody in."""
    forged = app.client.get("/recontact", headers=session_cookie("another-secret", roles=["supervisor"]))
    assert (forged.status_code, forged.headers["location"]) == (303, "/signin")


def test_every_post_needs_the_sessions_csrf_token(app: App) -> None:
    """A request posted without the session's token, or with another, is refused (403), counted, and neither
    queued nor audited; with the token it is queued pending and audited, and the chain verifies."""
    before = REGISTRY.get_sample_value("cpi_console_csrf_refused_total") or 0.0
    for token in ("", "u" * 43):
        answer = app.client.post("/recontact", headers=session_cookie(),
                                 data={"csrf_token": token, "intel_id": INTEL, "reason": REASON})
        assert answer.status_code == 403 and "This form has expired" in answer.text
    assert REGISTRY.get_sample_value("cpi_console_csrf_refused_total") == before + 2
    assert app.requests.of_requester("officer-a") == [] and app.store.verify_audit().entries == 0

    done = app.client.post("/recontact", headers=session_cookie(),
                           data={"csrf_token": "t" * 43, "intel_id": INTEL, "reason": REASON})
    assert done.status_code == 200 and "waiting for a supervisor" in done.text
    [queued] = app.requests.of_requester("officer-a")
    assert (queued.intel_id, queued.status) == (INTEL, RequestStatus.PENDING)
    assert app.store.verify_audit().ok and app.store.verify_audit().entries == 1


def test_bad_input_gets_a_clear_error_and_is_audited(app: App) -> None:
    """A malformed intel id or a short reason is refused with a message saying what to give, and audited."""
    for intel_id, reason, message in (("nope", REASON, "32 lower-case hexadecimal"),
                                      (INTEL, "short", "at least 20 characters")):
        answer = app.client.post("/recontact", headers=session_cookie(),
                                 data={"csrf_token": "t" * 43, "intel_id": intel_id, "reason": reason})
        assert answer.status_code == 422 and message in answer.text
    assert app.store.verify_audit().entries == 2 and app.requests.of_requester("officer-a") == []


def test_sign_in_without_a_configured_provider_says_so(app: App) -> None:
    """With no CPI_OIDC_ISSUER the console still serves, and /signin says sign-in is not configured (503)."""
    answer = app.client.get("/signin")
    assert answer.status_code == 503 and "CPI_OIDC_ISSUER" in answer.text


def test_a_request_moves_on_once_even_when_two_supervisors_act_at_once(tmp_path: Path) -> None:
    """Two decisions taken on the same pending request: the first moves it, the second finds it moved."""
    queue = RecontactRequests(tmp_path / "console.db")
    try:
        made = queue.add(INTEL, "officer-a", REASON, RequestStatus.PENDING)
        assert queue.move(made, RequestStatus.APPROVED, "super-b") is True
        assert queue.move(made, RequestStatus.REFUSED, "super-c") is False
        assert queue.get(made.request_id) == made.__class__(made.request_id, INTEL, "officer-a", REASON,
                                                            RequestStatus.APPROVED, "super-b")
        assert queue.pending() == []
    finally:
        queue.close()


def test_the_review_queue_takes_its_filters_from_the_query_string_and_its_criteria_from_settings(app: App) -> None:
    """With review configured for high priority and flagged decisions, a plain low-priority decision is not on the
    queue; the high ones are, oldest first, the one past its hour marked breached; `?status=breached` and
    `?category=` narrow the list as plain GETs; an unknown filter value filters nothing."""
    now = datetime.now(UTC)
    old = decision("high", ["crime_desk"], ["modern_slavery"])
    new = decision("high", ["safeguarding"], ["child_sexual_exploitation"])
    flagged = decision("low", ["intelligence_log"], ["drug_related_harm"], review_codes=("rules_evidence_thin",))
    plain = decision("low", ["intelligence_log"], ["drug_related_harm"])
    for made, waited in ((new, timedelta(minutes=10)), (old, timedelta(hours=2)), (flagged, timedelta(hours=1)),
                         (plain, timedelta(days=1))):
        assert app.decisions.add(made, now - waited)
    cookie = session_cookie(roles=["handler"])

    named = {"old": old, "new": new, "flagged": flagged, "plain": plain}

    def listed(query: str = "") -> list[str]:
        """The decisions on the page, in the order they appear."""
        answer = app.client.get(f"/queue{query}", headers=cookie)
        assert answer.status_code == 200
        found = [(answer.text.index(d.decision_id), name) for name, d in named.items() if d.decision_id in answer.text]
        return [name for _, name in sorted(found)]

    assert listed() == ["old", "new", "flagged"]
    assert listed("?status=breached") == ["old"]
    assert listed("?category=child_sexual_exploitation") == ["new"]
    assert listed("?priority=low&outcome=intelligence_log") == ["flagged"]
    assert listed("?status=overdue&category=nonsense") == ["old", "new", "flagged"]
    page = app.client.get("/queue", headers=cookie).text
    assert "Breached</strong> by 1h 00m" in page and "Held reports are for Intelligence Unit officers." in page
