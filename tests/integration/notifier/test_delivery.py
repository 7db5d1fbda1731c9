"""The notifier against a real SMTP server (aiosmtpd) and a real HTTP server, with its delivery ledger."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import Decision, DeliveryChannel, NotificationRecord, Team, WebhookAlert
from services.common.kafka.broker import free_port
from services.common.settings import NotifierSettings
from services.notifier.adapters.delivery import (
    DeliveryError,
    OutboxTransport,
    SmtpTransport,
    WebhookTransport,
    routing_from,
    transports_from,
)
from services.notifier.adapters.ledger import SqliteDeliveryLedger
from services.notifier.domain import (
    REPLAY_WINDOW_SECONDS,
    SIGNATURE_HEADER,
    Notification,
    notifications_for,
    verify_webhook,
)
from services.notifier.worker import NotificationUndeliverable, Notifier
from tests.mail_helpers import Inbox
from tests.mail_helpers import smtp_server as mail_server

SECRET = "a-team-webhook-secret-of-forty-characters"


def decision(outcomes: list[str], priority: str = "high") -> Decision:
    return Decision.model_validate({
        "decision_id": "d" * 32, "intel_id": "1" * 32, "outcomes": outcomes, "priority": priority,
        "grading": {"source_evaluation": 2, "intelligence_assessment": "B", "handling_code": "P"},
        "thrive": {"threat": "Exploitation by an adult.", "harm": "Serious.", "risk": "High.",
                   "vulnerability": "A 14-year-old."},
        "rationale": [{"rule_id": "child-criminal-exploitation", "reason": "A child is being used to carry drugs.",
                       "evidence": ["carry packages"]}],
        "rules_version": "test",
        "intel": {"intel_id": "1" * 32, "received_on": "2026-11-20", "categories": ["criminal_exploitation"],
                  "information": "A 14-year-old is made to carry packages for an older man called Skinny.",
                  "how_known": "told_by_subject", "lawful_basis": "safeguarding", "redaction_count": 2},
    })


def local_ledger(folder: Path, owner: str = "test-notifier") -> SqliteDeliveryLedger:
    """The single-replica ledger in `folder`/ledger.db."""
    return SqliteDeliveryLedger(folder / "ledger.db", owner, lease_seconds=120)


def notes(made: Decision, **settings: Any) -> list[Notification]:
    """The notifications for `made` under the simplest routing table, the one these settings make."""
    return notifications_for(made, routing_from(NotifierSettings(**settings)))


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on loopback that keeps what it receives."""
    with mail_server() as server:
        yield server


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, float]]]:
    """A real HTTP server on loopback recording JSON posts (and the status each was answered with); set
    `control['status']` to answer otherwise, `control['delay']` to answer that many seconds late."""
    received: list[dict[str, Any]] = []
    control: dict[str, float] = {"status": 204, "delay": 0.0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = int(control["status"])
            time.sleep(control["delay"])
            received.append({"body": json.loads(body), "raw": body, "idempotency_key": self.headers["Idempotency-Key"],
                             "signature": self.headers.get(SIGNATURE_HEADER, ""), "status": status})
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received, control
    finally:
        server.shutdown()


def test_smtp_delivery_reaches_a_real_mail_server(smtp_server: tuple[int, Inbox]) -> None:
    """A crime-desk notification is sent by SMTP to the crime desk's address, with the sanitised text."""
    port, inbox = smtp_server
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, crime_desk_email="desk@force.example")
    note = notes(decision(["crime_desk"]), crime_desk_email="desk@force.example")[0]
    SmtpTransport(settings).deliver(note)
    assert len(inbox.messages) == 1
    assert inbox.messages[0].rcpt_tos == ["desk@force.example"]
    content = inbox.messages[0].content.decode()
    assert "Skinny" in content and "[CPI HIGH] crime desk" in content


def test_smtp_failure_is_a_delivery_error() -> None:
    """No server listening means a DeliveryError, not a crash."""
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=free_port())
    note = notes(decision(["crime_desk"]))[0]
    with pytest.raises(DeliveryError):
        SmtpTransport(settings).deliver(note)


def test_webhook_delivery_posts_json_with_an_idempotency_key(http_server: Any) -> None:
    """A webhook notification is a JSON POST of the versioned WebhookAlert schema carrying the notification id
    as its Idempotency-Key; a non-2xx answer is a DeliveryError."""
    url, received, control = http_server
    note = notes(decision(["safeguarding"], "medium"), safeguarding_webhook=url,
                 safeguarding_webhook_secrets=[SECRET])[0]
    WebhookTransport().deliver(note)
    alert = WebhookAlert.model_validate_json(received[0]["raw"])
    assert (alert.schema_version, alert.team, alert.notification_id) == ("1", Team.SAFEGUARDING, note.notification_id)
    assert received[0]["idempotency_key"] == note.notification_id
    control["status"] = 503
    with pytest.raises(DeliveryError):
        WebhookTransport().deliver(note)


def test_a_receiver_can_tell_a_real_alert_from_a_forged_or_replayed_one(http_server: Any) -> None:
    """Regression (issue 17): a receiving system could not tell a real alert from a forged POST. Each request
    now carries `CPI-Signature: t=...,v1=...` (HMAC-SHA256 over the timestamp and the exact body, with the
    team's secret): the receiver's check (docs/webhooks.md) accepts it with the secret, and refuses it with
    another secret, with a byte of the body changed, or once it is older than the replay window."""
    url, received, _control = http_server
    note = notes(decision(["safeguarding"], "medium"), safeguarding_webhook=url,
                 safeguarding_webhook_secrets=[SECRET])[0]
    WebhookTransport().deliver(note)
    raw, header = received[0]["raw"], received[0]["signature"]
    now = time.time()
    assert verify_webhook(header, raw, [SECRET.encode()], now)
    assert not verify_webhook(header, raw, [b"not-the-team-secret-but-as-long-as-one"], now)
    assert not verify_webhook(header, raw.replace(b"safeguarding", b"safeguardinG", 1), [SECRET.encode()], now)
    assert not verify_webhook(header, raw, [SECRET.encode()], now + REPLAY_WINDOW_SECONDS + 5)
    forged = raw.replace(b'"priority":"medium"', b'"priority":"high"')
    assert forged != raw and not verify_webhook(header, forged, [SECRET.encode()], now)


def test_while_a_team_rotates_its_secret_both_the_old_and_the_new_one_verify(http_server: Any) -> None:
    """With two secrets configured the request carries a signature under each, so a receiver that has
    moved to the new secret and one still on the old both accept it."""
    url, received, _control = http_server
    old, new = "o" * 40, "n" * 40
    note = notes(decision(["crime_desk"]), crime_desk_webhook=url, crime_desk_webhook_secrets=[old, new])[0]
    WebhookTransport().deliver(note)
    raw, header = received[0]["raw"], received[0]["signature"]
    assert header.count("v1=") == 2
    assert verify_webhook(header, raw, [old.encode()], time.time())
    assert verify_webhook(header, raw, [new.encode()], time.time())


@pytest.mark.parametrize(("settings", "problem"), [
    ({"safeguarding_webhook": "https://hub.force.example/cpi"}, "needs CPI_SAFEGUARDING_WEBHOOK_SECRETS"),
    ({"crime_desk_webhook": "https://desk.force.example/cpi", "crime_desk_webhook_secrets": ["short"]},
     "at least 32 characters"),
    ({"crime_desk_webhook": "http://desk.force.example/cpi", "crime_desk_webhook_secrets": ["x" * 40]},
     "must be https://"),
    ({"crime_desk_webhook": "https://d.example/", "crime_desk_webhook_secrets": ["a" * 40, "b" * 40, "c" * 40]},
     "at most 2"),
])
def test_an_unsigned_or_plain_http_webhook_stops_the_notifier_with_a_clear_error(
    settings: dict[str, Any], problem: str
) -> None:
    """A webhook without a secret (or with a short one, or three), or over plain http to another machine, is
    refused when the settings are read, saying what is wrong."""
    with pytest.raises(ValidationError, match=problem):
        NotifierSettings(**settings)


async def test_a_redelivered_decision_notifies_each_team_once(
    smtp_server: tuple[int, Inbox], http_server: Any, tmp_path: Path
) -> None:
    """The worker's handler tells crime desk (SMTP) and safeguarding (webhook) once each and publishes a
    delivered record per team; on redelivery of the same decision it sends nothing and publishes the very
    same delivered records again (regression, issue 14: the ledger was written before the delivered record
    was published, so after a crash between the two the redelivered decision was skipped and 2-3 sent
    notifications per run never had their record on cpi.notification.delivered.v1)."""
    port, inbox = smtp_server
    url, received, _control = http_server
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, safeguarding_webhook=url,
                                safeguarding_webhook_secrets=[SECRET], data_dir=tmp_path)
    handle = Notifier(transports_from(settings), local_ledger(tmp_path), settings).decisions_handler()
    body = decision(["intelligence_log", "crime_desk", "safeguarding"]).model_dump_json().encode()
    first = await handle(body)
    records = [NotificationRecord.model_validate_json(p.value) for p in first]
    assert {(r.team, r.channel, r.status.value) for r in records} == {
        (Team.CRIME_DESK, DeliveryChannel.SMTP, "delivered"),
        (Team.SAFEGUARDING, DeliveryChannel.WEBHOOK, "delivered"),
    }
    # The worker died after the ledger write, before these were published: the redelivery must publish them.
    again = await handle(body)
    assert [(p.topic, p.key, p.value, p.timestamp) for p in again] == [
        (p.topic, p.key, p.value, p.timestamp) for p in first]
    assert len(inbox.messages) == 1 and len(received) == 1


async def test_a_ledger_from_before_records_were_kept_still_gets_a_delivered_record(tmp_path: Path) -> None:
    """A ledger row written by the older notifier (channel only, no record) still yields a delivered
    record on redelivery, rebuilt from the decision, and nothing is sent again."""
    import sqlite3

    settings = NotifierSettings(data_dir=tmp_path)
    note = notes(decision(["crime_desk"]))[0]
    with sqlite3.connect(tmp_path / "ledger.db") as old:
        old.execute("CREATE TABLE delivered (notification_id TEXT PRIMARY KEY, channel TEXT NOT NULL)")
        old.execute("INSERT INTO delivered VALUES (?, 'smtp')", (note.notification_id,))
    handle = Notifier(transports_from(settings), local_ledger(tmp_path), settings).decisions_handler()
    [published] = await handle(decision(["crime_desk"]).model_dump_json().encode())
    record = NotificationRecord.model_validate_json(published.value)
    assert (record.notification_id, record.channel, record.status.value) == (
        note.notification_id, DeliveryChannel.SMTP, "delivered")
    assert not (tmp_path / "outbox").exists()  # nothing sent


async def test_intelligence_log_only_notifies_nobody(tmp_path: Path) -> None:
    """A decision routed only to the intelligence log produces no notification."""
    settings = NotifierSettings(data_dir=tmp_path)
    handle = Notifier(transports_from(settings), local_ledger(tmp_path), settings).decisions_handler()
    assert await handle(decision(["intelligence_log"], "low").model_dump_json().encode()) == []
    assert not (tmp_path / "outbox").exists()


def test_outbox_writes_one_message_file_per_notification(tmp_path: Path) -> None:
    """Without a mail server, each notification becomes an .eml file named by its id."""
    note = notes(decision(["crime_desk"]), crime_desk_email="desk@x.example")[0]
    OutboxTransport(tmp_path, "cpi@x.example").deliver(note)
    mail = (tmp_path / f"{note.notification_id}.eml").read_text()
    assert "To: desk@x.example" in mail and "Skinny" in mail


async def test_a_failed_delivery_is_retried_from_the_retry_topic_until_it_is_delivered(
    http_server: Any, tmp_path: Path
) -> None:
    """A failing webhook puts a pending notification (with its decision, and when to try next) on the
    retry topic; the retry handler tries again when due, schedules another retry while it still fails,
    and publishes a delivered record once the webhook answers; the decision is never told twice."""
    from schemas import PendingNotification
    from schemas.topics import DELIVERED, RETRY

    url, received, control = http_server
    control["status"] = 500
    settings = NotifierSettings(safeguarding_webhook=url,
                                safeguarding_webhook_secrets=[SECRET], data_dir=tmp_path, retry_after_seconds=0.05)
    notifier = Notifier(transports_from(settings), local_ledger(tmp_path), settings)
    body = decision(["safeguarding"], "medium").model_dump_json().encode()
    first = await notifier.decisions_handler()(body)
    assert [p.topic for p in first] == [RETRY]
    pending = PendingNotification.model_validate_json(first[0].value)
    assert pending.record.status.value == "failed" and pending.record.attempts == 1 and pending.record.error
    assert pending.decision.decision_id == "d" * 32 and pending.not_before.tzinfo is not None

    retry = notifier.retries_handler()
    second = await retry(first[0].value)
    assert [p.topic for p in second] == [RETRY]
    assert PendingNotification.model_validate_json(second[0].value).record.attempts == 2
    # Delivery latency counts from the first attempt: the time travels unchanged from retry to retry.
    assert pending.first_attempt_at is not None
    assert PendingNotification.model_validate_json(second[0].value).first_attempt_at == pending.first_attempt_at
    control["status"] = 200
    third = await retry(second[0].value)
    assert [p.topic for p in third] == [DELIVERED]
    assert NotificationRecord.model_validate_json(third[0].value).attempts == 3
    # A redelivered retry: already told, so nothing is sent; its delivered record is published again, the same.
    assert [p.value for p in await retry(second[0].value)] == [third[0].value]
    assert len(received) == 3


async def test_a_notification_that_never_gets_through_is_given_up_for_the_dead_letter_topic(
    http_server: Any, tmp_path: Path
) -> None:
    """After max_attempts failures the retry handler raises NotificationUndeliverable, which the stage
    dead-letters (from where `cpi dlq replay` sends it back once the webhook is mended)."""
    url, _received, control = http_server
    control["status"] = 503
    settings = NotifierSettings(safeguarding_webhook=url,
                                safeguarding_webhook_secrets=[SECRET], data_dir=tmp_path, retry_after_seconds=0.01,
                                max_attempts=2)
    notifier = Notifier(transports_from(settings), local_ledger(tmp_path), settings)
    first = await notifier.decisions_handler()(decision(["safeguarding"], "medium").model_dump_json().encode())
    with pytest.raises(NotificationUndeliverable):
        await notifier.retries_handler()(first[0].value)


async def test_a_retry_not_yet_due_is_put_back_rather_than_held(tmp_path: Path, monkeypatch: Any) -> None:
    """A pending notification due far in the future is held only briefly and then put back, unchanged,
    on the retry topic (so the worker never sits on one event for minutes)."""
    from datetime import UTC, datetime, timedelta

    import services.notifier.worker as worker
    from schemas import PendingNotification
    from schemas.topics import RETRY

    monkeypatch.setattr(worker, "_LONGEST_HOLD", timedelta(seconds=0.05))
    settings = NotifierSettings(data_dir=tmp_path)
    notifier = Notifier(transports_from(settings), local_ledger(tmp_path), settings)
    made = decision(["crime_desk"])
    note = notes(made)[0]
    record = NotificationRecord(notification_id=note.notification_id, decision_id=made.decision_id,
                                intel_id=made.intel_id, team=note.team, outcome=note.outcome, priority=made.priority,
                                channel=DeliveryChannel.OUTBOX, status="failed", attempts=1,
                                delivered_on=datetime.now(UTC).date(), error="earlier failure")
    pending = PendingNotification(record=record, decision=made, not_before=datetime.now(UTC) + timedelta(hours=1))
    value = pending.model_dump_json().encode()
    again = await notifier.retries_handler()(value)
    assert [(p.topic, p.value) for p in again] == [(RETRY, value)]
    assert not (tmp_path / "outbox").exists()


def test_a_recipient_outside_the_allowed_domains_stops_the_notifier() -> None:
    """With CPI_MAIL_ALLOWED_DOMAINS set, a team address in another domain (a typo, say) is refused when the
    settings are read, so intelligence cannot be mailed outside the force; subdomains of an allowed one pass."""
    allowed = {"mail_allowed_domains": ["force.example"]}
    NotifierSettings(crime_desk_email="desk@force.example", safeguarding_email="mash@east.force.example", **allowed)
    with pytest.raises(ValidationError, match="safeguarding_email is not in CPI_MAIL_ALLOWED_DOMAINS"):
        NotifierSettings(crime_desk_email="desk@force.example", safeguarding_email="mash@forse.example", **allowed)
    with pytest.raises(ValidationError, match="crime_desk_email"):
        NotifierSettings(crime_desk_email="desk@notforce.example", safeguarding_email="m@force.example", **allowed)
