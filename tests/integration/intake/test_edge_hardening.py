"""The edge as it is served (real uvicorn, real sockets, the real broker): the findings of issue 11 about it.

Each test is a regression test for one finding: /metrics on the public port with `_created` series,
X-Forwarded-For believed from loopback, no read deadlines for slow clients, no concurrency cap.
"""

from __future__ import annotations

import itertools
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from schemas.topics import RECEIVED
from services.common.kafka.broker import free_port
from services.intake.server import start_metrics
from tests.integration.intake.live import LiveApi, live_api
from tests.kafka_helpers import read_all
from tests.unit.intake.samples import valid_submission

pytestmark = pytest.mark.kafka

URL = "/api/v1/submissions"


@pytest.fixture
def received(topic_factory: Callable[..., dict[str, str]]) -> str:
    """This test's received topic."""
    return topic_factory(RECEIVED)[RECEIVED.name]


@pytest.fixture
def edge(kafka_bootstrap: str, topic_prefix: str, received: str,
         tmp_path: Path) -> Iterator[Callable[..., LiveApi]]:
    """Start the edge with settings overrides; each is stopped at the end of the test."""
    with ExitStack() as stack:
        count = itertools.count()

        def start(**overrides: object) -> LiveApi:
            return stack.enter_context(live_api(kafka_bootstrap, topic_prefix, tmp_path / f"data{next(count)}",
                                                **overrides))

        yield start


def test_metrics_are_only_on_the_internal_listener_and_have_no_created_series(
        edge: Callable[..., LiveApi]) -> None:
    """Regression (issue 11): /metrics was public on the form's port, with a microsecond `_created` series
    per labelled child that showed when each kind of submission first arrived. Now the public listener
    answers 404 and the internal listener serves the counts with no `_created` series at all."""
    api = edge(edge_metrics_port=free_port())
    metrics = start_metrics(api.settings)
    try:
        assert httpx.post(api.url + URL, json=valid_submission(), headers=api.auth, timeout=30).status_code == 202
        assert httpx.get(f"{api.url}/metrics", timeout=10).status_code == 404
        assert metrics.url == f"http://127.0.0.1:{api.settings.edge_metrics_port}/metrics"
        text = httpx.get(metrics.url, timeout=10).text
        assert 'cpi_intake_submissions_total{channel="api",result="received"}' in text
        assert "_created" not in text
        openmetrics = httpx.get(metrics.url, headers={"accept": "application/openmetrics-text"}, timeout=10).text
        assert "cpi_intake_submissions" in openmetrics and "_created" not in openmetrics
    finally:
        metrics.close()


def _form_posts(api: LiveApi, forwarded_for: list[str]) -> list[int]:
    statuses = []
    for address in forwarded_for:
        with httpx.Client(base_url=api.url, timeout=30) as client:  # a new connection each time
            statuses.append(client.post("/", headers={"x-forwarded-for": address}, content=b"").status_code)
    return statuses


def test_forwarded_for_is_believed_only_from_configured_proxies(edge: Callable[..., LiveApi]) -> None:
    """Regression (issue 11): uvicorn believed X-Forwarded-For from loopback, so a client there named a new
    address each time and 80 of 80 posts passed a limit of 5. Now, with no proxy configured, the limit
    counts the connection's own address: 5 pass, 75 get 429. With loopback configured as the proxy, the
    forwarded address is the client: distinct clients each have their own budget, one client does not."""
    spoofed = [f"203.0.113.{n}" for n in range(80)]
    direct = _form_posts(edge(rate_limit_per_minute=5), spoofed)
    assert direct.count(429) == 75 and 429 not in direct[:5]

    behind_proxy = edge(rate_limit_per_minute=5, trusted_proxies=["127.0.0.0/8"])
    assert 429 not in _form_posts(behind_proxy, spoofed)
    assert _form_posts(behind_proxy, ["198.51.100.7"] * 8).count(429) == 3


def _closed(sock: socket.socket) -> tuple[bool, bytes]:
    """Whether the server closed this socket (after what it last sent), without blocking."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False, b""
    try:
        data = sock.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        return True, b""
    if not data:
        return True, b""
    rest = b""
    try:
        rest = sock.recv(4096)
    except (ConnectionResetError, BlockingIOError):
        pass
    return not rest, data + rest


def test_slow_clients_are_cut_off_and_a_normal_submission_still_goes_through(
        edge: Callable[..., LiveApi], kafka_bootstrap: str, received: str) -> None:
    """Regression (issue 11): 200 slow connections were held for a minute. Now, with 2-second deadlines,
    150 clients sending their headers a byte at a time and 50 sending a body a byte at a time are all
    answered 408 and closed within the deadline plus a little; while they are held, a normal submission
    gets its receipt and reaches the received topic."""
    timeout = 2.0
    api = edge(edge_header_timeout_seconds=timeout, edge_body_timeout_seconds=timeout)
    port = api.settings.api_port
    body_head = (f"POST {URL} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 f"authorization: Bearer {api.api_key}\r\ncontent-length: 5000\r\n\r\n").encode()
    header_trickle = b"POST / HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * 200
    slow: dict[socket.socket, tuple[bytes, float]] = {}
    started = time.monotonic()
    for n in range(200):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if n >= 150:
            sock.sendall(body_head)  # headers complete: the body's deadline runs from here
        sock.setblocking(False)
        slow[sock] = (header_trickle if n < 150 else b"{" * 5000, time.monotonic())
    sent = 0
    closed_after: dict[socket.socket, float] = {}
    answers: dict[socket.socket, bytes] = {}
    normal_status = None
    try:
        while len(closed_after) < len(slow) and time.monotonic() - started < timeout + 30:
            for sock, (trickle, opened) in slow.items():
                if sock in closed_after:
                    continue
                done, data = _closed(sock)
                answers[sock] = answers.get(sock, b"") + data
                if done:
                    closed_after[sock] = time.monotonic() - opened
                    continue
                try:
                    sock.send(trickle[sent:sent + 1])
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
            sent += 1
            if normal_status is None and sent == 3:  # all 200 are held now
                normal_status = httpx.post(api.url + URL, json=valid_submission(), headers=api.auth,
                                           timeout=30).status_code
            time.sleep(0.1)
    finally:
        for sock in slow:
            sock.close()
    assert normal_status == 202
    assert len(read_all(kafka_bootstrap, received)) == 1
    assert len(closed_after) == 200, f"{200 - len(closed_after)} slow connections were still open"
    assert max(closed_after.values()) < timeout + 3.0, max(closed_after.values())
    assert min(closed_after.values()) >= timeout - 0.2
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers.values())


def test_past_the_concurrency_cap_requests_get_503(edge: Callable[..., LiveApi]) -> None:
    """Regression (issue 11): there was no cap on connections at once. At the cap a new request is answered
    503 at once; when the other connections go, requests are served again."""
    api = edge(edge_max_concurrency=4)
    held = [socket.create_connection(("127.0.0.1", api.settings.api_port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.3)
        assert httpx.get(f"{api.url}/healthz", timeout=10).status_code == 503
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while httpx.get(f"{api.url}/healthz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the edge did not serve again after the connections went"
        time.sleep(0.2)
