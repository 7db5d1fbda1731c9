"""The delivery ledger on both backends (SQLite file, a real PostgreSQL server): claims, states, leases, and
two notifier replicas on one shared ledger never both sending."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas import DeliveryChannel, NotificationRecord, PendingNotification
from schemas.topics import DELIVERED, RETRY
from services.common.errors import TransientError
from services.common.kafka.broker import free_port
from services.common.settings import NotifierSettings
from services.notifier.adapters.delivery import transports_from
from services.notifier.adapters.ledger import DeliveryLedger, LedgerError, State, open_ledger
from services.notifier.worker import Notifier
from tests.integration.notifier.test_delivery import SECRET, decision, http_server, smtp_server
from tests.mail_helpers import Inbox
from tests.postgres_helpers import fresh_schema

__all__ = ["http_server", "smtp_server"]  # the real servers' fixtures, shared with test_delivery

Opener = Callable[..., DeliveryLedger]


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger location on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with fresh_schema(request.getfixturevalue("postgres_server"), "ledger") as url:
        yield url


@pytest.fixture
def postgres_ledger_url(postgres_server: str) -> Iterator[str]:
    """An empty ledger schema on the session's PostgreSQL server."""
    with fresh_schema(postgres_server, "ledger") as url:
        yield url


@pytest.fixture
def opener(ledger_url: str) -> Iterator[Opener]:
    """Opens ledger objects on the test's ledger, as different notifier processes would; closed at teardown."""
    opened: list[DeliveryLedger] = []

    def open_as(owner: str, lease_seconds: float = 120) -> DeliveryLedger:
        ledger = open_ledger(ledger_url, owner, lease_seconds)
        opened.append(ledger)
        return ledger

    yield open_as
    for ledger in opened:
        ledger.close()


def test_a_notification_moves_from_claimed_to_sent_to_recorded(opener: Opener) -> None:
    """The first claim is granted; while it is held, another replica's claim is refused (claimed, not its own);
    once sent, every claim sees `sent` with the kept record; once recorded, `recorded`."""
    one, two = opener("replica-1"), opener("replica-2")
    first = one.claim("n1", DeliveryChannel.SMTP)
    assert (first.state, first.mine) == (State.CLAIMED, True)
    refused = two.claim("n1", DeliveryChannel.SMTP)
    assert (refused.state, refused.mine) == (State.CLAIMED, False)
    assert refused.lease_until is not None and refused.lease_until > time.time() + 100
    assert one.sent("n1", b'{"the": "record"}')
    after = two.claim("n1", DeliveryChannel.SMTP)
    assert (after.state, after.mine, after.record, after.channel) == (
        State.SENT, False, b'{"the": "record"}', DeliveryChannel.SMTP)
    two.recorded("n1")
    assert one.claim("n1", DeliveryChannel.SMTP).state is State.RECORDED


def test_a_lapsed_claim_is_taken_over_and_its_first_holder_is_told(opener: Opener) -> None:
    """A claim whose lease has run out (its holder died before sending) is granted to the next claimant; the
    first holder, if it was only slow, learns from `sent` that it had lost the claim."""
    slow, other = opener("slow", lease_seconds=0.2), opener("other")
    assert slow.claim("n2", DeliveryChannel.WEBHOOK).mine
    assert not other.claim("n2", DeliveryChannel.WEBHOOK).mine
    time.sleep(0.3)
    assert other.claim("n2", DeliveryChannel.WEBHOOK).mine
    assert not slow.sent("n2", b"{}")
    assert other.claim("n2", DeliveryChannel.WEBHOOK).state is State.SENT


def test_a_failed_send_releases_the_claim_at_once(opener: Opener) -> None:
    """After a failed send the holder releases its claim, so a retry on any replica may claim it straight
    away; another replica cannot release a claim that is not its own."""
    one, two = opener("replica-1"), opener("replica-2")
    assert one.claim("n3", DeliveryChannel.SMTP).mine
    two.release("n3")
    assert not two.claim("n3", DeliveryChannel.SMTP).mine
    one.release("n3")
    assert two.claim("n3", DeliveryChannel.SMTP).mine


def test_concurrent_claims_on_the_shared_ledger_grant_each_notification_once(postgres_ledger_url: str) -> None:
    """Eight replicas (eight connections, eight threads) claim the same 40 notifications at the same time on one
    PostgreSQL ledger: each notification is granted to exactly one of them."""
    ledgers = [open_ledger(postgres_ledger_url, f"replica-{i}", 120) for i in range(8)]
    granted: list[list[str]] = [[] for _ in ledgers]
    start = threading.Barrier(len(ledgers))

    def claim_all(index: int) -> None:
        start.wait()
        for n in range(40):
            if ledgers[index].claim(f"n{n}", DeliveryChannel.SMTP).mine:
                granted[index].append(f"n{n}")

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(ledgers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for ledger in ledgers:
        ledger.close()
    every = [n for mine in granted for n in mine]
    assert sorted(every) == sorted(f"n{n}" for n in range(40))


async def test_two_notifier_replicas_on_one_ledger_tell_each_team_once(
    smtp_server: tuple[int, Inbox], http_server: Any, postgres_ledger_url: str, tmp_path: Path
) -> None:
    """Two notifiers with their own connections to one PostgreSQL ledger handle the same decision at the same
    moment (as around a rebalance): crime desk (real SMTP) and safeguarding (real HTTP) are each told once.
    Whichever replica did not send publishes the record kept in the ledger (if the other had sent already) or
    puts a pending notification on the retry topic (if the other was still sending); retried after the lease,
    that publishes the kept record and sends nothing."""
    port, inbox = smtp_server
    url, received, _control = http_server
    settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=port, safeguarding_webhook=url,
                                safeguarding_webhook_secrets=[SECRET], data_dir=tmp_path)
    replicas = [Notifier(transports_from(settings), open_ledger(postgres_ledger_url, f"replica-{i}", 1.0), settings)
                for i in range(2)]
    body = decision(["crime_desk", "safeguarding"]).model_dump_json().encode()
    outputs = await asyncio.gather(*(replica.decisions_handler()(body) for replica in replicas))
    assert len(inbox.messages) == 1 and len(received) == 1
    published = [p for output in outputs for p in output]
    delivered = [NotificationRecord.model_validate_json(p.value) for p in published if p.topic == DELIVERED]
    pending = [p for p in published if p.topic == RETRY]
    assert {r.team for r in delivered} == {"crime_desk", "safeguarding"}
    assert len(delivered) + len(pending) == 4  # each replica accounts for each team
    await asyncio.sleep(1.2)
    for p in pending:
        retried = await replicas[0].retries_handler()(p.value)
        [record] = [NotificationRecord.model_validate_json(r.value) for r in retried if r.topic == DELIVERED]
        assert record.team == PendingNotification.model_validate_json(p.value).record.team
    assert len(inbox.messages) == 1 and len(received) == 1


def test_a_ledger_url_of_another_kind_or_an_absent_server_is_a_clear_error() -> None:
    """A URL that is neither sqlite:/// nor postgresql:// is refused with what it must be; a PostgreSQL server
    that does not answer is a transient error (the stage retries, then stops without committing), and the
    message does not echo the URL's password."""
    with pytest.raises(LedgerError, match="must start with sqlite:/// or postgresql://"):
        open_ledger("mysql://ledger", "owner", 120)
    with pytest.raises(TransientError) as raised:
        open_ledger(f"postgresql://cpi:hunter2-secret@127.0.0.1:{free_port()}/ledger", "owner", 120)
    assert "hunter2" not in str(raised.value)
