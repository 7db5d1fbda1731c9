"""The notifier SIGKILLed between sending and recording, as one process and as two replicas on a shared
PostgreSQL ledger, on the real broker, counted at a real SMTP server (aiosmtpd: crime desk) and a real HTTP
server (safeguarding's webhook).

The kills are placed by the test-only fault hook (CPI_TEST_KILL_AT, services/notifier/worker.py), so each run
hits both crash windows for certain: `sent` (the team told, the ledger not yet: the documented window, where a
repeat is expected, with the same Message-ID / Idempotency-Key) and `ledger` (the ledger says sent, the record
not yet published: no repeat, the record published from the ledger). docs/reliability.md has the figures.
"""

from __future__ import annotations

import email
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from schemas import Decision, Team
from schemas.topics import DEADLETTER, DECIDED, DELIVERED, RETRY
from services.common.kafka.broker import free_port
from services.common.processes import stop_process, wait_until_ready
from services.notifier.domain import notification_id
from services.notifier.worker import FAULT_ENV
from tests.integration.notifier.test_delivery import SECRET, decision, http_server, smtp_server
from tests.kafka_helpers import produce, read_all
from tests.mail_helpers import Inbox
from tests.postgres_helpers import fresh_schema

__all__ = ["http_server", "smtp_server"]  # the real receivers' fixtures, shared with the notifier's tests

pytestmark = pytest.mark.kafka

_OUTCOMES = (["crime_desk", "safeguarding"], ["crime_desk"], ["intelligence_log", "safeguarding"],
             ["intelligence_log"])
_TEAM_OF_ADDRESS = {"crime-desk@localhost": Team.CRIME_DESK}


def decisions(count: int) -> list[Decision]:
    """`count` decisions with ids of their own, routed to both teams, one, the other, or neither in turn."""
    made = []
    for n in range(count):
        base = decision(list(_OUTCOMES[n % len(_OUTCOMES)]), "high")
        intel_id, decision_id = f"{n:031x}a", f"{n:031x}d"
        made.append(base.model_copy(update={
            "decision_id": decision_id, "intel_id": intel_id,
            "intel": base.intel.model_copy(update={"intel_id": intel_id})}))
    return made


def expected_notifications(made: list[Decision]) -> set[str]:
    teams = {"crime_desk": Team.CRIME_DESK, "safeguarding": Team.SAFEGUARDING}
    return {notification_id(d.decision_id, teams[o.value]) for d in made for o in d.outcomes if o.value in teams}


def receipts(inbox: Inbox, posts: list[dict[str, Any]], made: list[Decision]) -> list[tuple[str, str, str]]:
    """Every message the receivers got, as (team, decision id, the key it carried): the SMTP message's
    Message-ID, the webhook's Idempotency-Key."""
    decision_of_intel = {d.intel_id: d.decision_id for d in made}
    got = []
    for envelope in inbox.messages:
        message = email.message_from_bytes(envelope.content)
        intel_id = str(message["Subject"]).rpartition("intel ")[2].strip()
        key = str(message["Message-ID"]).strip("<>").partition("@")[0]
        got.append((_TEAM_OF_ADDRESS[envelope.rcpt_tos[0]].value, decision_of_intel[intel_id], key))
    for post in posts:
        got.append((post["body"]["team"], post["body"]["decision_id"], post["idempotency_key"]))
    return got


@dataclass
class Notifiers:
    """Notifier processes of one test: started, SIGKILLed by their fault hook, restarted without it."""

    env: dict[str, str]
    folder: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    log_of: dict[str, Path] = field(default_factory=dict)
    killed: list[Path] = field(default_factory=list)

    def start(self, name: str, *, wait: bool = True, **extra: str) -> None:
        """Start notifier `name`; with `wait`, return once it is ready (holds its partitions)."""
        self.ports.setdefault(name, free_port())
        log_path = self.folder / f"{name}-{len(self.logs)}.log"
        self.logs.append(log_path)
        env = {**self.env, "CPI_WORKER_PORT": str(self.ports[name]),
               "CPI_DATA_DIR": str(self.folder / name), **extra}
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "notifier"], env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        self.log_of[name] = log_path
        if wait:
            wait_until_ready(f"http://127.0.0.1:{self.ports[name]}/readyz", process=process)

    def restart_the_killed(self) -> None:
        """Any notifier its fault hook SIGKILLed is started again, without the hook."""
        for name, process in list(self.processes.items()):
            if process.poll() is not None:
                assert process.returncode == -9, f"{name} exited with {process.returncode}, not by its fault hook"
                self.killed.append(self.log_of[name])
                self.start(name)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)


def events(log_path: Path) -> list[dict[str, Any]]:
    """The structlog JSON events in a worker's log."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def in_the_window(log_path: Path) -> set[str]:
    """Notifications a killed notifier began to send and never wrote to its ledger as sent."""
    logged = events(log_path)
    sending = {e["notification_id"] for e in logged if e.get("event") == "notification_sending"}
    return sending - {e["notification_id"] for e in logged if e.get("event") == "notification_sent"}


def run_until_delivered(notifiers: Notifiers, bootstrap: str, delivered_topic: str, wanted: set[str],
                        seconds: float = 90) -> list[Any]:
    """Restart killed notifiers as they die, until every wanted notification has a delivered record."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        notifiers.restart_the_killed()
        records = read_all(bootstrap, delivered_topic)
        if wanted <= {json.loads(r.value)["notification_id"] for r in records}:
            return records
        time.sleep(1)
    raise AssertionError(f"not every notification had its delivered record within {seconds:.0f}s")


@pytest.fixture
def notifier_env(kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]],
                 smtp_server: tuple[int, Inbox], http_server: Any) -> dict[str, str]:
    """A notifier's environment: this test's topics, crime desk by real SMTP, safeguarding by real webhook,
    a 3 s claim lease (so a dead notifier's claims lapse quickly), a short session timeout, and one send at a
    time, so that each fault falls exactly where the test puts it (with N sends in flight a SIGKILL can leave up
    to N notifications in the window: docs/reliability.md)."""
    topic_factory(DECIDED, DELIVERED, RETRY, DEADLETTER)
    port, _inbox = smtp_server
    url, _received, _control = http_server
    return {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
            "CPI_SMTP_HOST": "127.0.0.1", "CPI_SMTP_PORT": str(port), "CPI_SAFEGUARDING_WEBHOOK": url,
            "CPI_SAFEGUARDING_WEBHOOK_SECRETS": json.dumps([SECRET]), "CPI_DELIVERY_LEASE_SECONDS": "3",
            "CPI_RETRY_AFTER_SECONDS": "1", "CPI_SESSION_TIMEOUT_SECONDS": "6", "CPI_DELIVERY_CONCURRENCY": "1",
            "PYTHONUNBUFFERED": "1"}  # a SIGKILLed worker's last log lines are what the test reads


@pytest.fixture
def notifiers(notifier_env: dict[str, str], tmp_path: Path) -> Iterator[Notifiers]:
    started = Notifiers(notifier_env, tmp_path)
    try:
        yield started
    finally:
        started.stop()


def check_the_record(made: list[Decision], records: list[Any], got: list[tuple[str, str, str]],
                     window: set[str], bootstrap: str, prefix: str) -> Counter[str]:
    """What every scenario must show; returns how many times each notification reached its team."""
    wanted = expected_notifications(made)
    keys = Counter(key for _team, _decision, key in got)
    delivered = {json.loads(r.value)["notification_id"] for r in records}
    # Distinct notifications at the receivers are exactly the decisions' teams, each with its delivered record.
    assert set(keys) == wanted
    assert set(keys) <= delivered
    # A repeat carries the key of the one notification for that decision and team, never another.
    for team, decision_id, key in got:
        assert key == notification_id(decision_id, Team(team))
    # Repeats only inside the documented window.
    assert {key for key, times in keys.items() if times > 1} <= window
    assert read_all(bootstrap, f"{prefix}{DEADLETTER.name}") == []
    return keys


def all_recorded(states: Callable[[], list[str]], count: int, seconds: float = 10) -> bool:
    """Whether the ledger comes to hold `count` rows, every one `recorded` (the stage marks each once the broker
    has acknowledged its delivered record, a moment after the record is readable)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = states()
        if len(found) == count and set(found) == {"recorded"}:
            return True
        time.sleep(0.2)
    return False


def report(scenario: str, made: list[Decision], keys: Counter[str], window: set[str], records: list[Any],
           started: float) -> str:
    """The scenario's figures, printed with -s (docs/reliability.md quotes them)."""
    return (f"\n{scenario}: {len(made)} decisions, {len(keys)} notifications, {sum(keys.values())} received, "
            f"repeats {sum(t - 1 for t in keys.values())} (in the window: {len(window)}), delivered records "
            f"{len(records)} ({len(records) - len({json.loads(r.value)['notification_id'] for r in records})} "
            f"repeated), drained in {time.monotonic() - started:.1f} s")


def test_a_notifier_killed_between_sending_and_recording_leaves_no_hole_in_the_record(
    notifiers: Notifiers, kafka_bootstrap: str, topic_prefix: str, smtp_server: tuple[int, Inbox], http_server: Any,
) -> None:
    """Killed once after telling a team and before its ledger says so (the window), restarted with a kill after
    the ledger and before the delivered record, then restarted clean: every notification reaches its team and
    has its delivered record (and its ledger row says `recorded`); only the one in the window reaches its team
    twice, with the same key."""
    _port, inbox = smtp_server
    _url, posts, _control = http_server
    made = decisions(16)
    notifiers.start("notifier", **{FAULT_ENV: "sent:3"})
    started = time.monotonic()
    for d in made:
        produce(kafka_bootstrap, f"{topic_prefix}{DECIDED.name}", d.model_dump_json().encode(), d.intel_id.encode())
    deadline = time.monotonic() + 60
    while notifiers.processes["notifier"].poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert notifiers.processes["notifier"].returncode == -9, "the fault hook did not kill the notifier"
    notifiers.killed.append(notifiers.logs[-1])
    window = in_the_window(notifiers.logs[-1])
    assert len(window) == 1
    # Not waited for: with decisions waiting, its fault may fire before /readyz is first polled.
    notifiers.start("notifier", wait=False, **{FAULT_ENV: "ledger:2"})
    records = run_until_delivered(notifiers, kafka_bootstrap, f"{topic_prefix}{DELIVERED.name}",
                                  expected_notifications(made))
    assert len(notifiers.killed) == 2, "the second fault (after the ledger) never fired"
    keys = check_the_record(made, records, receipts(inbox, posts, made), window, kafka_bootstrap, topic_prefix)
    assert {key for key, times in keys.items() if times > 1} == window  # the window's repeat is real
    assert max(keys.values()) == 2

    def states() -> list[str]:
        with sqlite3.connect(notifiers.folder / "notifier" / "notifier" / "ledger.db") as db:
            return [row[0] for row in db.execute("SELECT state FROM deliveries")]

    assert all_recorded(states, len(keys))
    print(report("one notifier, killed at 'sent' then at 'ledger'", made, keys, window, records, started))


def test_two_notifier_replicas_on_a_shared_ledger_under_sigkill_tell_each_team_once(
    notifiers: Notifiers, notifier_env: dict[str, str], postgres_server: str, kafka_bootstrap: str,
    topic_prefix: str, smtp_server: tuple[int, Inbox], http_server: Any,
) -> None:
    """Two notifier replicas share one PostgreSQL ledger; one is SIGKILLed in the window (sent, not in the
    ledger), the other after its ledger write, both restarted: distinct notifications counted at the receivers
    equal the decisions' teams, each has its delivered record (and its ledger row says `recorded`), and none
    reaches its team twice except one whose sender died inside the window (and then with the same key)."""
    _port, inbox = smtp_server
    _url, posts, _control = http_server
    import psycopg

    made = decisions(40)
    with fresh_schema(postgres_server, "ledger") as ledger_url:
        notifiers.env = {**notifier_env, "CPI_DELIVERY_LEDGER_URL": ledger_url}
        notifiers.start("replica-a", **{FAULT_ENV: "sent:4"})
        notifiers.start("replica-b", **{FAULT_ENV: "ledger:6"})
        started = time.monotonic()
        for d in made:
            produce(kafka_bootstrap, f"{topic_prefix}{DECIDED.name}", d.model_dump_json().encode(),
                    d.intel_id.encode())
        records = run_until_delivered(notifiers, kafka_bootstrap, f"{topic_prefix}{DELIVERED.name}",
                                      expected_notifications(made), seconds=100)

        def states() -> list[str]:
            with psycopg.connect(ledger_url, autocommit=True) as db:
                return [row[0] for row in db.execute("SELECT state FROM deliveries").fetchall()]

        assert all_recorded(states, len(expected_notifications(made)))
        notifiers.stop()
    assert len(notifiers.killed) == 2, "both replicas were to be SIGKILLed by their fault hooks"
    window = set().union(*(in_the_window(log) for log in notifiers.killed))
    keys = check_the_record(made, records, receipts(inbox, posts, made), window, kafka_bootstrap, topic_prefix)
    print(report("two replicas on one PostgreSQL ledger, one killed at 'sent', one at 'ledger'", made, keys,
                 window, records, started))
