"""The single local broker SIGKILLed and restarted mid-stream (issue 14), with the whole pipeline (`cpi up`) on
it and submissions arriving at the edge throughout.

The broker is one of this test's own (on its own ports and data directory), so the session's broker, which
every other test uses, is untouched. A submission the edge acknowledged (202) must be decided; one it
refused while the broker was away is the professional's to send again. No intel may be sealed twice, no
worker may give up (`cpi up` would stop), and every notification reaches its team once, with its delivered
record: no process dies here, so there is no crash window and a repeat is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.common.kafka.broker import LocalBroker, free_port
from tests.e2e.conftest import running_pipeline
from tests.integration.notifier.test_delivery import SECRET, http_server
from tests.kafka_helpers import connect_as_administrator
from tests.reliability.harness import Load, RestartableSmtp, check_nothing_lost_or_repeated, drain, submit

__all__ = ["http_server"]

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBroker]:
    """A local broker of this test's own, this process connected to it as its administrator for the test."""
    broker = LocalBroker(tmp_path_factory.mktemp("own-kafka"), port=free_port(), controller_port=free_port())
    broker.start()
    connect_as_administrator(monkeypatch, broker)
    try:
        yield broker
    finally:
        broker.stop()


def sigkill(broker: LocalBroker) -> None:
    """SIGKILL the broker, as a crashed host would leave it (no clean shutdown, no leader handover)."""
    pid = broker.running_pid()
    assert pid is not None, "the broker is not running"
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # it is this process's child (LocalBroker.start): reap it, or it looks alive
    except ChildProcessError:
        pass  # already reaped by the subprocess module


def test_the_broker_sigkilled_and_restarted_mid_stream_loses_no_acknowledged_submission(
    own_broker: LocalBroker, tmp_path: Path, team_mail: RestartableSmtp, http_server: Any, long_run: bool,
) -> None:
    """While submissions arrive at the edge, the broker is SIGKILLed, left down 3 s and started again on the
    same data (once; three times with --long): every submission the edge answered 202 is decided, no intel is
    sealed twice, no worker gives up, and every notification reaches its team exactly once with one delivered
    record."""
    url, posts, _control = http_server
    extra = {"CPI_SMTP_HOST": "127.0.0.1", "CPI_SMTP_PORT": str(team_mail.port), "CPI_SAFEGUARDING_WEBHOOK": url,
             "CPI_SAFEGUARDING_WEBHOOK_SECRETS": json.dumps([SECRET]), "CPI_SESSION_TIMEOUT_SECONDS": "10",
             "CPI_RATE_LIMIT_PER_MINUTE": "100000"}  # one partner sends the whole load: not a rate-limit test
    count, kills = (240, 3) if long_run else (60, 1)
    (tmp_path / "pipeline").mkdir()
    with running_pipeline(own_broker.bootstrap, tmp_path / "pipeline", extra) as pipe:
        load = Load()
        sender = threading.Thread(target=submit, args=(pipe, count, load), kwargs={"pause": 0.1})
        started = time.monotonic()
        sender.start()
        down: list[float] = []
        during: list[int] = []  # submissions answered while the broker was down
        for kill in range(kills):
            while load.submitted < (kill + 1) * count // (kills + 2) and sender.is_alive():
                time.sleep(0.1)
            sigkill(own_broker)
            killed_at, before = time.monotonic(), load.submitted
            time.sleep(3)
            own_broker.start()
            down.append(time.monotonic() - killed_at)
            during.append(load.submitted - before)
        sender.join()
        assert any(during), "no submission arrived while the broker was away"
        tally = drain(pipe, load, started, seconds=240 if long_run else 150)
        received = check_nothing_lost_or_repeated(pipe, load, tally, team_mail.inbox, posts, notify_seconds=90)
        tally = replace(drain(pipe, load, started), drain_seconds=tally.drain_seconds)  # the notifications' too
        scenario = f"broker SIGKILLed {kills}x (down {', '.join(f'{d:.1f}' for d in down)} s, restart included)"
        print(tally.line(scenario) + f"; answered while it was down {during}, not taken (why: how many) "
              f"{dict(Counter(load.refused.values()))}; {len(received)} notifications received once each")
