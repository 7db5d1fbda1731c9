"""The routing table against a real SMTP server (aiosmtpd): each area's team is told of its own cases, once;
mail is plain text with a stable Message-ID, over STARTTLS where configured; a bad table stops the notifier."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from schemas import Decision, NotificationRecord, PendingNotification
from schemas.topics import DELIVERED
from services.common.kafka.broker import free_port, write_tls
from services.common.serde import encode
from services.common.settings import NotifierSettings
from services.notifier.adapters.delivery import DeliveryError, SmtpTransport, transports_from
from services.notifier.domain import notifications_for
from services.notifier.worker import Notifier
from tests.integration.notifier.test_delivery import local_ledger
from tests.mail_helpers import Inbox
from tests.mail_helpers import smtp_server as mail_server

TABLE = """\
version: "test-7"
default_team: force-mash
teams:
  - name: force-mash
    when: {outcomes: [safeguarding], areas: [ZZ]}
    channels: [{email: mash@force.example}]
  - name: bristol-childrens-hub
    when: {outcomes: [safeguarding], at_risk: child, areas: [BS]}
    channels: [{email: childrens-hub@bristol.force.example}]
  - name: bristol-adults-team
    when: {outcomes: [safeguarding], at_risk: adult, areas: [BS]}
    channels: [{email: adults@bristol.force.example}]
  - name: gloucester-childrens-hub
    when: {outcomes: [safeguarding], at_risk: child, areas: [GL]}
    channels: [{email: childrens-hub@glos.force.example}]
"""


def case(age: int, postcode: str, tag: str) -> Decision:
    """A safeguarding decision about someone of `age` at risk at `postcode`, its ids made from `tag`."""
    ident = (tag * 32)[:32]
    return Decision.model_validate({
        "decision_id": ident, "intel_id": ident, "outcomes": ["intelligence_log", "safeguarding"],
        "priority": "medium",
        "grading": {"source_evaluation": 2, "intelligence_assessment": "C", "handling_code": "P"},
        "thrive": {"threat": "t", "harm": "h", "risk": "r", "vulnerability": "v"},
        "rationale": [{"rule_id": "r", "reason": "Someone at risk."}], "rules_version": "test",
        "intel": {"intel_id": ident, "received_on": "2026-11-20", "categories": ["drug_related_harm"],
                  "subjects": [{"role": "at_risk", "approx_age": age}],
                  "locations": [{"description": "A flat", "postcode": postcode}],
                  "information": f"Case {tag}: a person at risk is visited by dealers at a flat.",
                  "how_known": "told_by_third_party", "lawful_basis": "safeguarding", "redaction_count": 0},
    })


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on loopback that keeps what it receives."""
    with mail_server() as server:
        yield server


@pytest.fixture
def tls_smtp_server(tmp_path: Path) -> Iterator[tuple[int, Inbox, Path]]:
    """A real SMTP server that requires STARTTLS, with a certificate from a CA of its own (ca.pem)."""
    write_tls(tmp_path, "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "broker.pem")
    with mail_server(context) as (port, inbox):
        yield port, inbox, tmp_path / "ca.pem"


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_each_areas_team_gets_its_own_case_once(smtp_server: tuple[int, Inbox], tmp_path: Path) -> None:
    """With the table loaded from its file: the Bristol children's hub gets the Bristol child case and the
    Bristol adults' team the Bristol adult case, each once (also when both decisions are redelivered), and no
    one else gets either; every delivered record names the team and the table's version, and the notifications
    metric counts them by team, channel and result."""
    port, inbox = smtp_server
    (tmp_path / "routing.yaml").write_text(TABLE)
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, data_dir=tmp_path,
                                routing_table=tmp_path / "routing.yaml", mail_allowed_domains=["force.example"])
    handle = Notifier(transports_from(settings), local_ledger(tmp_path), settings).decisions_handler()
    labels = {"team": "bristol-childrens-hub", "channel": "smtp", "result": "delivered"}
    before = _sample("cpi_notifications_total", labels)
    latency_before = _sample("cpi_notification_delivery_seconds_count",
                             {"team": "bristol-childrens-hub", "channel": "smtp"})
    child, adult = case(14, "BS5 9AB", "c").model_dump_json().encode(), case(35, "BS16 1QY", "a").model_dump_json()
    published = [*await handle(child), *await handle(adult.encode())]
    await handle(child)
    await handle(adult.encode())
    hub, adults = inbox.to("childrens-hub@bristol.force.example"), inbox.to("adults@bristol.force.example")
    assert len(inbox.messages) == 2
    assert [m["Subject"] for m in hub] == [f"[CPI MEDIUM] safeguarding: intel {'c' * 32}"]
    assert [m["Subject"] for m in adults] == [f"[CPI MEDIUM] safeguarding: intel {'a' * 32}"]
    records = [NotificationRecord.model_validate_json(p.value) for p in published]
    assert [(r.team, r.routing_version, r.status.value) for r in records] == [
        ("bristol-childrens-hub", "test-7", "delivered"), ("bristol-adults-team", "test-7", "delivered")]
    assert _sample("cpi_notifications_total", labels) == before + 1
    assert _sample("cpi_notification_delivery_seconds_count",
                   {"team": "bristol-childrens-hub", "channel": "smtp"}) == latency_before + 1


async def test_a_case_no_team_takes_goes_to_the_default_team_counted_and_logged_without_content(
    smtp_server: tuple[int, Inbox], tmp_path: Path
) -> None:
    """A safeguarding case in an area no team covers is mailed to the default team; the unmatched-decisions
    metric goes up by one and one `decision_matched_no_team` event is logged, carrying ids, outcomes, priority,
    team and table version only: nothing of the intel's text, subjects or places."""
    port, inbox = smtp_server
    (tmp_path / "routing.yaml").write_text(TABLE)
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, data_dir=tmp_path,
                                routing_table=tmp_path / "routing.yaml")
    handle = Notifier(transports_from(settings), local_ledger(tmp_path), settings).decisions_handler()
    before = _sample("cpi_notifier_unmatched_decisions_total", {})
    with structlog.testing.capture_logs() as logs:
        await handle(case(14, "M1 1AE", "e").model_dump_json().encode())
    assert [m["Subject"] for m in inbox.to("mash@force.example")] == [f"[CPI MEDIUM] safeguarding: intel {'e' * 32}"]
    assert len(inbox.messages) == 1
    assert _sample("cpi_notifier_unmatched_decisions_total", {}) == before + 1
    [event] = [e for e in logs if e["event"] == "decision_matched_no_team"]
    assert set(event) <= {"event", "log_level", "decision_id", "outcomes", "priority", "default_team",
                          "routing_version"}
    assert "M1" not in repr(event) and "dealers" not in repr(event)


def test_mail_is_plain_text_with_the_same_message_id_on_every_attempt(smtp_server: tuple[int, Inbox]) -> None:
    """A notification's e-mail is text/plain, has a Date, and its Message-ID is the notification's own: sent
    twice (a retry after a lost answer), both copies carry the same one, so a mail system can tell."""
    port, inbox = smtp_server
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, safeguarding_email="mash@force.example")
    from services.notifier.adapters.delivery import routing_from

    note = notifications_for(case(14, "BS5 9AB", "b"), routing_from(settings))[0]
    SmtpTransport(settings).deliver(note)
    SmtpTransport(settings).deliver(note)
    first, second = inbox.to("mash@force.example")
    assert first["Message-ID"] == second["Message-ID"] == f"<{note.notification_id}@cpi.local>"
    assert first.get_content_type() == "text/plain" and not first.is_multipart() and first["Date"]


def _note_for(settings: NotifierSettings) -> Any:
    from services.notifier.adapters.delivery import routing_from

    return notifications_for(case(14, "BS5 9AB", "f"), routing_from(settings))[0]


def test_starttls_where_configured_is_required_and_verified(
    tls_smtp_server: tuple[int, Inbox, Path], smtp_server: tuple[int, Inbox]
) -> None:
    """With CPI_SMTP_STARTTLS the message goes only inside TLS to a server whose certificate verifies (against
    CPI_SMTP_CAFILE): a server offering no STARTTLS, or one whose certificate is not trusted, gets nothing."""
    tls_port, tls_inbox, ca = tls_smtp_server
    plain_port, plain_inbox = smtp_server
    trusted = NotifierSettings(smtp_host="127.0.0.1", smtp_port=tls_port, smtp_starttls=True, smtp_cafile=ca)
    SmtpTransport(trusted).deliver(_note_for(trusted))
    assert tls_inbox.over_tls == [True]
    untrusted = NotifierSettings(smtp_host="127.0.0.1", smtp_port=tls_port, smtp_starttls=True)
    with pytest.raises(DeliveryError):
        SmtpTransport(untrusted).deliver(_note_for(untrusted))
    no_tls = NotifierSettings(smtp_host="127.0.0.1", smtp_port=plain_port, smtp_starttls=True, smtp_cafile=ca)
    with pytest.raises(DeliveryError):
        SmtpTransport(no_tls).deliver(_note_for(no_tls))
    assert len(tls_inbox.messages) == 1 and plain_inbox.messages == []


@pytest.mark.parametrize("command", [["worker", "notifier"], ["up"]], ids=["cpi worker notifier", "cpi up"])
def test_an_address_outside_the_allow_list_stops_the_notifier_at_start_up(tmp_path: Path, command: list[str]) -> None:
    """`cpi worker notifier` (and `cpi up`, before it starts anything) with a table whose team address is
    outside CPI_MAIL_ALLOWED_DOMAINS exits at once with status 2, naming the file, the line and the address,
    before any decision is taken."""
    bad = TABLE.replace("adults@bristol.force.example", "adults@bristol.forse.example")
    (tmp_path / "routing.yaml").write_text(bad)
    line = next(n for n, row in enumerate(bad.splitlines(), 1) if "forse.example" in row)
    env = {**os.environ, "CPI_ROUTING_TABLE": str(tmp_path / "routing.yaml"), "CPI_DATA_DIR": str(tmp_path / "d"),
           "CPI_MAIL_ALLOWED_DOMAINS": '["force.example"]', "CPI_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "services.cli", *command], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'routing.yaml'}:{line}:" in done.stderr
    assert "'adults@bristol.forse.example' is not in CPI_MAIL_ALLOWED_DOMAINS" in done.stderr


async def test_delivery_latency_counts_from_the_first_attempt_across_retries(tmp_path: Path) -> None:
    """A notification first tried an hour ago (its pending record says when) and delivered now adds about an
    hour to the delivery-latency histogram of its team and channel, not the moments of the last attempt; the
    first failure carries that time on to the retry topic."""
    from datetime import UTC, datetime, timedelta

    from schemas import DeliveryChannel, PendingNotification
    from services.notifier.adapters.delivery import routing_from

    settings = NotifierSettings(data_dir=tmp_path)
    notifier = Notifier(transports_from(settings), local_ledger(tmp_path), settings)
    made = case(14, "BS5 9AB", "9")
    note = notifications_for(made, routing_from(settings))[0]
    first = datetime.now(UTC) - timedelta(hours=1)
    record = NotificationRecord(notification_id=note.notification_id, decision_id=made.decision_id,
                                intel_id=made.intel_id, team=note.team, outcome=note.outcome, priority=made.priority,
                                channel=DeliveryChannel.OUTBOX, status="failed", attempts=1,
                                delivered_on=first.date(), error="earlier failure")
    pending = PendingNotification(record=record, decision=made, not_before=datetime.now(UTC), first_attempt_at=first)
    labels = {"team": "safeguarding", "channel": "outbox"}
    before = _sample("cpi_notification_delivery_seconds_sum", labels)
    [published] = await notifier.retries_handler()(pending.model_dump_json().encode())
    assert NotificationRecord.model_validate_json(published.value).status.value == "delivered"
    added = _sample("cpi_notification_delivery_seconds_sum", labels) - before
    assert 3600 <= added < 3700


async def test_a_retry_the_changed_table_no_longer_makes_goes_to_the_teams_it_makes_now(
        smtp_server: tuple[int, Inbox], tmp_path: Path) -> None:
    """A notification waiting on the retry topic when operations change the table, to one that no longer has its
    team, is not dead-lettered (that would tell no one): the decision is routed again under the new table, its
    team there is told once, and a team it had reached already is not told again."""
    port, inbox = smtp_server
    made = case(14, "BS5 9AB", "e")
    (tmp_path / "old.yaml").write_text(TABLE)
    old = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, data_dir=tmp_path,
                           routing_table=tmp_path / "old.yaml", mail_allowed_domains=["force.example"])
    first = Notifier(transports_from(old), local_ledger(tmp_path), old)
    (hub_note,) = [n for n in notifications_for(made, first._table) if n.team == "bristol-childrens-hub"]
    waiting = PendingNotification(
        record=NotificationRecord(notification_id=hub_note.notification_id, decision_id=made.decision_id,
                                  intel_id=made.intel_id, team=hub_note.team, outcome=hub_note.outcome,
                                  priority=made.priority, channel="smtp", status="failed", attempts=1,
                                  delivered_on="2026-11-20", error="450 try later"),
        decision=made, not_before=datetime.now(UTC))
    (tmp_path / "new.yaml").write_text(TABLE.replace('version: "test-7"', 'version: "test-8"').replace(
        "name: bristol-childrens-hub", "name: bristol-mash"))
    new = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, data_dir=tmp_path,
                           routing_table=tmp_path / "new.yaml", mail_allowed_domains=["force.example"])
    handle = Notifier(transports_from(new), local_ledger(tmp_path), new).retries_handler()
    published = [*await handle(encode(waiting)), *await handle(encode(waiting))]
    records = [NotificationRecord.model_validate_json(p.value) for p in published if p.topic == DELIVERED]
    # The second handling (a redelivery) sends nothing: at most it publishes the same record again.
    assert {(r.team, r.routing_version, r.status) for r in records} == {("bristol-mash", "test-8", "delivered")}
    assert len({r.notification_id for r in records}) == 1
    assert len(inbox.to("childrens-hub@bristol.force.example")) == 1
