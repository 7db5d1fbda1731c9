"""A second replica of each worker started and stopped under load (issue 14): the rebalances of scaling up and
down, one stage after another, while submissions arrive at the edge throughout.

`cpi up` runs the edge and the console; the workers are the harness's own processes (`Workers`), with static
membership as the manifests give them. The notifier's replicas share a PostgreSQL delivery ledger, as
docs/reliability.md says several replicas must; the sanitisers share the pipeline's sealed store. Nothing is
killed, so every acknowledged submission must be decided, no intel sealed twice and no team told twice;
repeated records per topic (a partition handed over before its last batch was committed) are counted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import WORKERS, running_pipeline
from tests.e2e.test_pipeline import CANARY_STRINGS
from tests.integration.notifier.test_delivery import SECRET, http_server
from tests.postgres_helpers import fresh_schema
from tests.reliability.harness import (
    Load,
    RestartableSmtp,
    Workers,
    drain,
    notified,
    repeated_records,
    submit,
    told,
)

__all__ = ["http_server"]

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def submit_until(pipe: Any, load: Load, stop: threading.Event, pause: float) -> None:
    """Post one submission every `pause` seconds until `stop` is set."""
    while not stop.is_set():
        submit(pipe, 1, load, pause=pause)


@pytest.mark.timeout(2400)  # minutes of broker restarts or rebalances on a loaded machine
def test_a_second_replica_of_each_worker_started_and_stopped_under_load_loses_nothing_and_tells_each_team_once(
    long_only: None, kafka_bootstrap: str, postgres_server: str, tmp_path: Path, team_mail: RestartableSmtp,
    http_server: Any,
) -> None:
    """While submissions arrive, a second replica of intake, sanitiser, router and notifier in turn is started
    (waited for until it holds partitions) and stopped with SIGTERM, twice each (--long only):
    every acknowledged submission is decided, no intel is sealed twice, every notification reaches its team
    exactly once and has its delivered record, no worker gives up, and no log quotes the source."""
    url, posts, _control = http_server
    rounds = 2
    with fresh_schema(postgres_server, "ledger") as ledger_url:
        extra = {"CPI_SMTP_HOST": "127.0.0.1", "CPI_SMTP_PORT": str(team_mail.port),
                 "CPI_SAFEGUARDING_WEBHOOK": url, "CPI_SAFEGUARDING_WEBHOOK_SECRETS": json.dumps([SECRET]),
                 "CPI_RATE_LIMIT_PER_MINUTE": "100000", "CPI_DELIVERY_LEDGER_URL": ledger_url,
                 "CPI_DELIVERY_LEASE_SECONDS": "10", "CPI_RETRY_AFTER_SECONDS": "1"}
        (tmp_path / "pipeline").mkdir()
        with running_pipeline(kafka_bootstrap, tmp_path / "pipeline", extra, workers=()) as pipe:
            workers = Workers(pipe)
            load, stop = Load(), threading.Event()
            try:
                for name in WORKERS:
                    workers.start(name)
                for name in WORKERS:
                    workers.wait_ready(name)
                sender = threading.Thread(target=submit_until, args=(pipe, load, stop, 0.3))
                started = time.monotonic()
                sender.start()
                joined: list[float] = []
                for _round in range(rounds):
                    for name in WORKERS:
                        began = time.monotonic()
                        workers.start(f"{name}-1", wait=True)
                        joined.append(time.monotonic() - began)
                        workers.stop(f"{name}-1")
                stop.set()
                sender.join()
                tally = drain(pipe, load, started, seconds=240)
                assert sorted(workers.alive()) == sorted(WORKERS), "a worker gave up"
                assert notified(pipe, load, seconds=180), "not every decision's teams have a delivered record"
            finally:
                stop.set()
                workers.stop_all()
            assert tally.lost == [], f"{len(tally.lost)} acknowledged submissions were never decided"
            assert tally.duplicate_sealed == 0
            received, delivered = told(pipe, team_mail.inbox, posts, load)
            assert set(received) == delivered  # every notification sent has its record, and only those
            assert max(received.values()) == 1, {k: n for k, n in received.items() if n > 1}
            assert not [c for c in CANARY_STRINGS if c in pipe.log_text()], "a log line quotes the source"
            print(tally.line(f"a second replica of each worker started and stopped, {rounds} round(s)")
                  + f"; each replica ready (holding partitions) {', '.join(f'{s:.1f}' for s in joined)} s after it "
                  f"was started; repeated records {repeated_records(pipe)}; {len(received)} notifications received "
                  "once each")
