"""Notification targets down, slow and answering 500 (issue 14): one notifier process on the real broker,
crime desk mailed through a real SMTP server (aiosmtpd) that is stopped for a while and started again on the
same port, safeguarding told through a real HTTP webhook that answers 500, then 200, then slowly.

Every notification must reach its team exactly once counted at the receivers (an SMTP message by its
Message-ID, a webhook call answered 2xx by its Idempotency-Key), each with its delivered record, and the
retries must show on cpi.notification.retry.v1 and in the notifier's metrics. Nothing crashes here, so there
is no crash window: any repeat is a failure.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas import PendingNotification
from schemas.topics import DEADLETTER, DECIDED, DELIVERED, RETRY
from tests.kafka_helpers import produce, read_all
from tests.mail_helpers import Inbox
from tests.reliability.harness import RestartableSmtp
from tests.reliability.test_notifier_crash import (
    Notifiers,
    decisions,
    expected_notifications,
    http_server,
    notifier_env,
    notifiers,
    receipts,
    run_until_delivered,
)

__all__ = ["http_server", "notifier_env", "notifiers"]  # the notifier suite's fixtures, shared

pytestmark = pytest.mark.kafka


@pytest.fixture
def smtp_server(team_mail: RestartableSmtp) -> tuple[int, Inbox]:
    """The notifier suite's SMTP fixture, as a server this test can stop and start again."""
    return team_mail.port, team_mail.inbox


def retries_counted(port: int) -> float:
    """The notifier's `retry_scheduled` notifications so far, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "cpi_notifications_total" and sample.labels.get("result") == "retry_scheduled")


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} within {seconds:.0f}s"
        time.sleep(0.5)


def test_targets_down_answering_500_and_slow_still_tell_every_team_exactly_once(
    notifiers: Notifiers, team_mail: RestartableSmtp, http_server: Any, kafka_bootstrap: str, topic_prefix: str,
    long_run: bool,
) -> None:
    """With the team's SMTP server stopped and the webhook answering 500, decisions keep coming: each
    notification is retried through the retry topic (counted there and in the metrics). Once the SMTP server
    is back on its port and the webhook answers 200 (slowly, 1.5 s a call), every notification reaches its team
    exactly once (Message-ID / Idempotency-Key of the 2xx answers), each has exactly one delivered record, none
    is dead-lettered, and every failed attempt carried the same key as the one that got through."""
    _url, posts, control = http_server
    made = decisions(80 if long_run else 24)
    first, second = made[: len(made) // 2], made[len(made) // 2:]
    team_mail.stop()
    control["status"] = 500
    notifiers.start("notifier")
    started = time.monotonic()
    for d in first:
        produce(kafka_bootstrap, f"{topic_prefix}{DECIDED.name}", d.model_dump_json().encode(), d.intel_id.encode())

    def retried_teams() -> set[str]:
        return {str(PendingNotification.model_validate_json(r.value).record.team)
                for r in read_all(kafka_bootstrap, f"{topic_prefix}{RETRY.name}")}

    wait_until(lambda: retried_teams() == {"crime_desk", "safeguarding"}, 60, "both teams' failures retried")
    time.sleep(3)  # down a while longer: retries of retries
    assert retries_counted(notifiers.ports["notifier"]) >= 2
    assert team_mail.inbox.messages == [] and {p["status"] for p in posts} == {500}

    team_mail.start()
    control["status"], control["delay"] = 200, 1.5
    for d in second:
        produce(kafka_bootstrap, f"{topic_prefix}{DECIDED.name}", d.model_dump_json().encode(), d.intel_id.encode())
    wanted = expected_notifications(made)
    records = run_until_delivered(notifiers, kafka_bootstrap, f"{topic_prefix}{DELIVERED.name}", wanted,
                                  seconds=150)
    drained = time.monotonic() - started

    answered = [p for p in posts if 200 <= p["status"] < 300]
    got = receipts(team_mail.inbox, answered, made)
    keys = Counter(key for _team, _decision, key in got)
    assert set(keys) == wanted  # every notification reached its team...
    assert max(keys.values()) == 1, {k: n for k, n in keys.items() if n > 1}  # ...exactly once
    delivered = Counter(json.loads(r.value)["notification_id"] for r in records)
    assert set(delivered) == wanted and max(delivered.values()) == 1
    failed_keys = {p["idempotency_key"] for p in posts if p["status"] >= 500}
    assert failed_keys and failed_keys <= wanted  # a retry is the same notification, never a new one
    assert notifiers.processes["notifier"].poll() is None, "the notifier died"
    assert read_all(kafka_bootstrap, f"{topic_prefix}{DEADLETTER.name}") == []
    retried = read_all(kafka_bootstrap, f"{topic_prefix}{RETRY.name}")
    print(f"\ntargets down, 500, slow: {len(made)} decisions, {len(wanted)} notifications, {len(got)} received "
          f"(0 repeats allowed), {len(posts) - len(answered)} webhook calls answered 500, {len(retried)} records on "
          f"the retry topic, {retries_counted(notifiers.ports['notifier']):.0f} retries in the metrics, "
          f"{len(records)} delivered records, drained in {drained:.1f} s")
