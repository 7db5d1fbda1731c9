"""Re-contact in the console against the audit trail (issue 12, step 6): the console, the long-running process,
counts every refused attempt for the CpiRecontactRefused alert, and with the audit topic unreachable it does
nothing at all (fail closed: 503, nothing queued, nothing in the database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.common.kafka.broker import free_port
from services.common.keys import load_unseal_keys
from services.console.adapters.decisions import ReviewQueue
from services.console.adapters.held import HeldReview
from services.console.adapters.requests import RecontactRequests
from services.console.app import create_console
from services.console.settings import ConsoleSettings
from services.sanitiser.adapters.sealed_store import SealedStore
from services.sanitiser.worker import open_store
from tests.integration.console.test_sessions_and_requests import INTEL, REASON, SECRET, session_cookie
from tests.key_helpers import key_settings

CSRF = "t" * 43  # session_cookie's token


def refused(step: str, reason: str) -> float:
    return REGISTRY.get_sample_value("cpi_console_recontact_refused_total", {"step": step, "reason": reason}) or 0.0


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[TestClient, SealedStore, RecontactRequests]]:
    """The console as `cpi console` opens it (open_store: every audit entry anchored on the audit topic), its Kafka
    a port nothing listens on."""
    key_settings(tmp_path)
    settings = ConsoleSettings(data_dir=tmp_path, console_session_secret=SECRET, console_cookie_secure=False,
                               kafka_bootstrap=f"127.0.0.1:{free_port()}", topic_prefix="nowhere.")
    keys = load_unseal_keys(settings)
    store = open_store(settings, keys)
    requests = RecontactRequests(tmp_path / "console.db")
    decisions = ReviewQueue(tmp_path / "console.db")
    app = create_console(settings, store=store, held=HeldReview(settings, keys, store), requests=requests,
                         decisions=decisions)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield client, store, requests
    decisions.close()
    requests.close()
    store.close()


def test_without_the_audit_topic_a_request_is_refused_and_nothing_kept(
    console: tuple[TestClient, SealedStore, RecontactRequests],
) -> None:
    """An IU officer's request while the audit topic is unreachable: 503 saying nothing was done, no request
    queued, no audit entry left in the database, and the attempt counted as refused (audit_unavailable)."""
    client, store, requests = console
    before = refused("request", "audit_unavailable")

    answer = client.post("/recontact", headers=session_cookie(), data={"csrf_token": CSRF, "intel_id": INTEL,
                                                                       "reason": REASON})

    assert answer.status_code == 503 and "nothing was done" in answer.text
    assert requests.of_requester("officer-a") == []
    assert store.audit_entries() == []
    assert refused("request", "audit_unavailable") == before + 1


def test_every_refused_attempt_is_counted_by_step_and_reason(
    console: tuple[TestClient, SealedStore, RecontactRequests],
) -> None:
    """A handler asking for a source's details, and a supervisor approving a request that does not exist, are
    refused and counted (by step and reason code, never an id), even though the audit topic is away too."""
    client, _store, _requests = console
    asked, approved = refused("request", "role_not_permitted"), refused("approve", "not_found")

    handler = client.post("/recontact", headers=session_cookie(roles=["handler"]),
                          data={"csrf_token": CSRF, "intel_id": INTEL, "reason": REASON})
    supervisor = client.post(f"/recontact/{'f' * 32}/approve", headers=session_cookie(roles=["supervisor"]),
                             data={"csrf_token": CSRF})

    assert (handler.status_code, supervisor.status_code) == (503, 503)
    assert refused("request", "role_not_permitted") == asked + 1
    assert refused("approve", "not_found") == approved + 1
