"""The console's review queue fed from cpi.outcome.decided.v1 on the real broker, connecting as cpi-iu with only
the registry's ACLs: every decision kept once, re-deliveries keeping their first time, offsets committed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from schemas.topics import DECIDED, IU, ROUTER
from services.common.kafka import clients
from services.common.kafka.acls import apply_acls
from services.common.kafka.principals import ADMIN_ENV, principal_env_file, read_env_file, with_connection
from services.common.settings import PlatformSettings
from services.console.adapters.decisions import DecisionFeed, ReviewQueue
from tests.decision_helpers import decision

pytestmark = pytest.mark.kafka


def read_counts() -> dict[str, float]:
    return {result: REGISTRY.get_sample_value("cpi_console_decisions_read_total", {"result": result}) or 0.0
            for result in ("queued", "duplicate", "undecodable")}


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the review queue did not catch up in time"
        time.sleep(0.2)


def test_the_feed_keeps_each_decision_once_as_cpi_iu_and_commits_what_it_kept(
        kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]],
        kafka_env_dir: Path, tmp_path: Path) -> None:
    """Decisions the router principal publishes (one of them twice, and one record that is no decision) reach
    the queue once each, with the minute the console first read them and the fields it filters on; a second feed
    in the same group after a restart reads nothing again, and what it reads next is added."""
    names = topic_factory(DECIDED)
    base = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    apply_acls(with_connection(base, read_env_file(kafka_env_dir / ADMIN_ENV)), (DECIDED,))
    iu = with_connection(base, read_env_file(principal_env_file(kafka_env_dir, IU)))
    assert iu.kafka_sasl_username == IU
    router = clients.producer(with_connection(base, read_env_file(principal_env_file(kafka_env_dir, ROUTER))))

    def publish(*values: str) -> None:
        for value in values:
            router.send(names[DECIDED.name], value=value.encode()).get(timeout=30)

    first = decision("high", ["crime_desk", "safeguarding"], ["child_sexual_exploitation"],
                     review_codes=("model_doubts_crime_desk",))
    second = decision("low", ["intelligence_log"], ["anti_social_behaviour"])
    third = decision("medium", ["safeguarding"], ["modern_slavery"])
    queue = ReviewQueue(tmp_path / "console.db")
    seen_at = datetime(2026, 3, 2, 9, 41, 37, tzinfo=UTC)
    before = read_counts()
    try:
        publish(first.model_dump_json(), "not a decision", second.model_dump_json(), first.model_dump_json())
        feed = DecisionFeed(iu, queue, now=lambda: seen_at)
        feed.start()
        try:
            wait_until(lambda: len(queue.items()) == 2)
            time.sleep(2)  # the repeat of `first` is read too; it must not make a third row
            assert feed.current(within=5)  # it has been polling
        finally:
            feed.stop()
        time.sleep(0.2)
        assert not feed.current(within=0.1)  # stopped: no longer current, and the queue page would say so
        kept = {item.decision_id: item for item in queue.items()}
        assert set(kept) == {first.decision_id, second.decision_id}
        high = kept[first.decision_id]
        assert (high.intel_id, high.priority, high.outcomes, high.categories, high.review_codes) == (
            first.intel_id, "high", ("crime_desk", "safeguarding"), ("child_sexual_exploitation",),
            ("model_doubts_crime_desk",))
        assert high.queued_at == datetime(2026, 3, 2, 9, 41, tzinfo=UTC)  # to the minute, no finer
        middle = read_counts()
        assert {k: middle[k] - before[k] for k in before} == {"queued": 2, "duplicate": 1, "undecodable": 1}

        publish(third.model_dump_json(), first.model_dump_json())
        later = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
        restarted = DecisionFeed(iu, queue, now=lambda: later)
        restarted.start()
        try:
            wait_until(lambda: len(queue.items()) == 3)
            time.sleep(2)
        finally:
            restarted.stop()
        after = read_counts()
        # Only the two new records were read: the first feed's commits stood across the restart.
        assert {k: after[k] - middle[k] for k in after} == {"queued": 1, "duplicate": 1, "undecodable": 0}
        times = {item.decision_id: item.queued_at for item in queue.items()}
        assert times == {first.decision_id: seen_at.replace(second=0), second.decision_id: seen_at.replace(second=0),
                         third.decision_id: later}
    finally:
        router.close()
        queue.close()
