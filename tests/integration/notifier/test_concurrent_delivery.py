"""The notifier's batch handler against a real (threaded) webhook server and its real ledger: a batch's
decisions are told concurrently up to the bound and never beyond it, revisions of one intel are told in their
order, outcomes stay in input order, and a redelivered batch tells no one again."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from schemas import Decision, NotificationRecord
from services.common.errors import DecodeError
from services.common.settings import NotifierSettings
from services.notifier.adapters.delivery import transports_from
from services.notifier.worker import Notifier
from tests.integration.notifier.test_delivery import SECRET, decision, local_ledger

BOUND = 3


class Hook:
    """What the webhook server saw: each request's start and end, and the most in flight at once. The first
    requests wait (up to 20 s) until BOUND are in flight, so a bounded concurrent sender reaches it however
    slow the machine; a serial one never does."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.in_flight = 0
        self.most = 0
        self.events: list[tuple[str, str]] = []


@pytest.fixture
def webhook() -> Iterator[tuple[str, Hook]]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            decision_id = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["decision_id"]
            with hook.changed:
                hook.in_flight += 1
                hook.most = max(hook.most, hook.in_flight)
                hook.events.append(("start", decision_id))
                hook.changed.notify_all()
                hook.changed.wait_for(lambda: hook.most >= BOUND, timeout=20)
                hook.events.append(("end", decision_id))
                hook.in_flight -= 1
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", hook
    finally:
        server.shutdown()


def about(intel: str, revision: str) -> bytes:
    """A crime-desk decision about intel `intel` (one hex digit), its decision id made from `revision`."""
    made = decision(["intelligence_log", "crime_desk"])
    return made.model_copy(update={"decision_id": revision * 32, "intel_id": intel * 32}).model_dump_json().encode()


async def test_a_batch_is_told_concurrently_within_the_bound_in_order_per_intel_and_once(
        webhook: tuple[str, Hook], tmp_path: Path) -> None:
    """Six intels and a second revision of the first: at most BOUND webhook calls are ever in flight and BOUND
    are reached; the revision's call starts only after the first revision's has ended; each decision's
    delivered record is in its input's place (a bad input is its own DecodeError); the same batch again sends
    nothing and publishes the same records."""
    url, hook = webhook
    settings = NotifierSettings(crime_desk_webhook=url, crime_desk_webhook_secrets=[SECRET],
                                safeguarding_webhook=url, safeguarding_webhook_secrets=[SECRET],
                                delivery_concurrency=BOUND, data_dir=tmp_path)
    handle = Notifier(transports_from(settings), local_ledger(tmp_path), settings).decisions_batch_handler()
    batch = [about("1", "a"), about("2", "b"), b"not a decision", about("3", "c"), about("4", "d"),
             about("1", "e"), about("5", "f"), about("6", "0")]
    first = await handle(batch)
    assert isinstance(first[2], DecodeError)
    told = [[NotificationRecord.model_validate_json(p.value).decision_id for p in outcome]
            for outcome in first if not isinstance(outcome, Exception)]
    assert told == [[Decision.model_validate_json(v).decision_id] for i, v in enumerate(batch) if i != 2]
    assert hook.most == BOUND
    assert hook.events.index(("end", "a" * 32)) < hook.events.index(("start", "e" * 32))
    assert len(hook.events) == 2 * 7
    again = await handle(batch)
    assert len(hook.events) == 2 * 7
    assert [[p.value for p in o] for o in again if not isinstance(o, Exception)] == [
        [p.value for p in o] for o in first if not isinstance(o, Exception)]
