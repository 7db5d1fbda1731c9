"""The notifier worker as its own process on a real broker: a webhook that fails, then recovers."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from schemas import NotificationRecord, PendingNotification
from schemas.topics import DEADLETTER, DECIDED, DELIVERED, RETRY
from services.common.kafka.broker import free_port
from tests.integration.notifier.test_delivery import decision
from tests.kafka_helpers import produce, read_all, wait_for, worker_process

pytestmark = pytest.mark.kafka


@pytest.fixture
def flaky_webhook() -> Iterator[tuple[str, list[int]]]:
    """A real HTTP server that answers 503 to its first two posts and 204 after; records each answer."""
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status = 503 if len(answers) < 2 else 204
            answers.append(status)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/safeguarding", answers
    finally:
        server.shutdown()


def test_a_failing_team_is_told_once_it_recovers_and_nothing_is_lost(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], tmp_path: Path,
    flaky_webhook: tuple[str, list[int]],
) -> None:
    """Crime desk (outbox) is told at once; safeguarding's webhook fails twice, so two pending
    notifications go through the retry topic, and the third attempt is delivered; no dead letters."""
    url, answers = flaky_webhook
    names = topic_factory(DECIDED, DELIVERED, RETRY, DEADLETTER)
    port = free_port()
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
           "CPI_DATA_DIR": str(tmp_path), "CPI_SAFEGUARDING_WEBHOOK": url,
           "CPI_SAFEGUARDING_WEBHOOK_SECRETS": '["a-team-webhook-secret-of-forty-characters"]',
           "CPI_RETRY_AFTER_SECONDS": "0.5"}
    with worker_process("notifier", env, port, tmp_path / "worker.log"):
        body = decision(["intelligence_log", "crime_desk", "safeguarding"]).model_dump_json().encode()
        produce(kafka_bootstrap, names[DECIDED.name], body, b"1" * 32)

        told = wait_for(kafka_bootstrap, names[DELIVERED.name],
                        lambda r: json.loads(r.value)["team"] == "safeguarding")
        record = NotificationRecord.model_validate_json(told.value)
        assert record.status.value == "delivered" and record.attempts == 3
        retried = read_all(kafka_bootstrap, names[RETRY.name])
        pending = [PendingNotification.model_validate_json(r.value) for r in retried]
        assert [p.record.attempts for p in pending] == [1, 2]
        teams = sorted(json.loads(r.value)["team"] for r in read_all(kafka_bootstrap, names[DELIVERED.name]))
        assert teams == ["crime_desk", "safeguarding"]
        assert answers == [503, 503, 204]
        assert read_all(kafka_bootstrap, names[DEADLETTER.name]) == []
