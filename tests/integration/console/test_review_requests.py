"""The review POST in process (issue 12 step 3), with a real SQLite review queue and sealed store: CSRF required,
one review sent per revision (a second handler is told it was reviewed first), a review the broker did not take
is reported and may be sent again, an unknown decision is 404. (The browser and the broker: tests/browser/
test_console_review.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka.errors import KafkaTimeoutError
from starlette.testclient import TestClient

from schemas import DecisionReview
from services.common.keys import load_unseal_keys
from services.console.adapters.decisions import ReviewQueue
from services.console.adapters.held import HeldReview
from services.console.adapters.requests import RecontactRequests
from services.console.app import create_console
from services.console.settings import ConsoleSettings
from services.sanitiser.adapters import open_sealed_store
from tests.decision_helpers import decision
from tests.integration.console.test_sessions_and_requests import SECRET, session_cookie
from tests.key_helpers import key_settings

DRAFT = decision("high", ["crime_desk"], ["organised_crime"])
HANDLER = session_cookie(officer_id="handler-1", roles=["handler"])
CONFIRM = {"csrf_token": "t" * 43, "action": "confirm", "revision": "0",
           "reason": "Checked against the intel: agreed as drafted."}


class Broker:
    """Stands in for the publish call only: records what was sent, or refuses the next `refusals` sends."""

    def __init__(self) -> None:
        self.sent: list[DecisionReview] = []
        self.refusals = 0

    def __call__(self, review: DecisionReview) -> None:
        if self.refusals:
            self.refusals -= 1
            raise KafkaTimeoutError("the broker did not acknowledge in time")
        self.sent.append(review)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Broker]]:
    key_settings(tmp_path)
    settings = ConsoleSettings(data_dir=tmp_path, console_session_secret=SECRET,  # type: ignore[arg-type]
                               console_cookie_secure=False)
    keys = load_unseal_keys(settings)
    store = open_sealed_store(f"sqlite:///{tmp_path / 'sealed.db'}", keys)
    requests, decisions = RecontactRequests(tmp_path / "console.db"), ReviewQueue(tmp_path / "console.db")
    decisions.add(DRAFT, datetime.now(UTC))
    broker = Broker()
    console = create_console(settings, store=store, held=HeldReview(settings, keys, store), requests=requests,
                             decisions=decisions, reviews=broker)
    with TestClient(console, base_url="http://127.0.0.1", follow_redirects=False) as running:
        yield running, broker
    decisions.close()
    requests.close()
    store.close()



def test_a_review_needs_the_sessions_csrf_token(client: tuple[TestClient, Broker]) -> None:
    """Without the session's token nothing is sent (403)."""
    app, broker = client
    answer = app.post(f"/decisions/{DRAFT.decision_id}/review", data={**CONFIRM, "csrf_token": "x"}, headers=HANDLER)
    assert answer.status_code == 403 and broker.sent == []


def test_one_review_per_revision_and_a_second_handler_is_told(client: tuple[TestClient, Broker]) -> None:
    """The first confirmation is sent, of revision 0, by the signed-in officer; a second of the same revision is
    refused (409) and not sent."""
    app, broker = client
    first = app.post(f"/decisions/{DRAFT.decision_id}/review", data=CONFIRM, headers=HANDLER)
    assert first.status_code == 200 and "revision 1" in first.text
    [sent] = broker.sent
    assert (sent.base, sent.officer_id, sent.action.value) == (DRAFT, "handler-1", "confirmed")
    again = app.post(f"/decisions/{DRAFT.decision_id}/review", data=CONFIRM,
                     headers=session_cookie(officer_id="handler-2", roles=["handler"]))
    assert again.status_code == 409 and "Another handler" in again.text and len(broker.sent) == 1


def test_a_review_the_broker_did_not_take_is_reported_and_can_be_sent_again(client: tuple[TestClient, Broker]) -> None:
    """A send that fails says so (503, nothing published) and frees the revision, so sending again works."""
    app, broker = client
    broker.refusals = 1
    failed = app.post(f"/decisions/{DRAFT.decision_id}/review", data=CONFIRM, headers=HANDLER)
    assert failed.status_code == 503 and "could not be sent" in failed.text and broker.sent == []
    assert app.post(f"/decisions/{DRAFT.decision_id}/review", data=CONFIRM, headers=HANDLER).status_code == 200
    assert len(broker.sent) == 1


def test_an_unknown_decision_is_not_found(client: tuple[TestClient, Broker]) -> None:
    """Neither the page nor the POST of a decision the console does not hold is served (404)."""
    app, broker = client
    assert app.get(f"/decisions/{'0' * 32}", headers=HANDLER).status_code == 404
    assert app.post(f"/decisions/{'0' * 32}/review", data=CONFIRM, headers=HANDLER).status_code == 404
    assert broker.sent == []
