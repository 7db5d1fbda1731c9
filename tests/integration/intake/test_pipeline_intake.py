"""Intake on the real broker: form and API to the received topic, the worker to accepted/rejected/dead letters.

Canary values in the source and the free text are searched for in the raw bytes of every topic:
nothing a professional typed may be readable there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from schemas import DeadLetter, ReceivedSubmission, RejectedSubmission
from schemas.topics import ACCEPTED, DEADLETTER, RECEIVED, REJECTED
from services.common.days import day_timestamp, utc_today
from services.common.envelope import open_sealed
from services.common.kafka.broker import free_port
from services.common.keys import load_edge_keys, load_intake_keys
from services.intake.receiving import received_record
from tests.integration.intake.live import LiveApi, live_api
from tests.kafka_helpers import produce, read_all, wait_for, worker_process
from tests.unit.intake.samples import valid_submission

pytestmark = pytest.mark.kafka

CANARIES = {
    "source.name": "Zebedee Canaryname",
    "source.role": "Canary Safeguarding Lead",
    "source.organisation": "Canaryville Primary",
    "source.email": "zebedee.canary@canaryville.example.org",
    "source.phone": "01632 960 777",
}
INFORMATION = "Canaryfact: Sam is collected from school by an older man in a silver van most Fridays."


@pytest.fixture
def topics(topic_factory: Callable[..., dict[str, str]]) -> dict[str, str]:
    """This test's received, accepted, rejected and dead-letter topics."""
    return topic_factory(RECEIVED, ACCEPTED, REJECTED, DEADLETTER)


@pytest.fixture
def api(kafka_bootstrap: str, topic_prefix: str, topics: dict[str, str], tmp_path: Path) -> Iterator[LiveApi]:
    """The edge, served by uvicorn, producing to this test's topics."""
    with live_api(kafka_bootstrap, topic_prefix, tmp_path / "data") as running:
        yield running


@pytest.fixture
def intake_worker(kafka_bootstrap: str, topic_prefix: str, api: LiveApi) -> Iterator[subprocess.Popen[bytes]]:
    """`cpi worker intake` as its own process, sharing the edge's data dir (and so the transport key pair)."""
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
           "CPI_DATA_DIR": str(api.settings.data_dir),
           "CPI_LOG_LEVEL": "warning"}
    with worker_process("intake", env, free_port(), api.settings.data_dir / "intake-worker.log") as process:
        yield process


def form_fields(page: str) -> list[tuple[str, str]]:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert token and key
    return [
        ("csrf_token", token.group(1)), ("idempotency_key", key.group(1)), *CANARIES.items(),
        ("source.organisation_type", "education"), ("source.recontact_ok", "yes"),
        ("lawful_basis", "safeguarding"), ("categories", "child_sexual_exploitation"),
        ("information", INFORMATION), ("how_known", "witnessed_directly"),
        ("subjects.0.role", "at_risk"), ("subjects.0.name", "Sam Example"), ("subjects.0.approx_age", "12"),
        ("vehicles.0.colour", "silver"), ("vehicles.0.description", "a van"),
    ]


def assert_no_canaries(records: list[Any]) -> None:
    for record in records:
        raw = bytes(record.value) + b"".join(v for _, v in record.headers or [])
        for value in [*CANARIES.values(), "Canaryfact", "Sam Example"]:
            assert value.encode() not in raw, f"{value!r} is readable on {record.topic}"


def test_a_form_submission_reaches_accepted_with_nothing_readable_on_any_topic(
        api: LiveApi, topics: dict[str, str], intake_worker: subprocess.Popen[bytes], kafka_bootstrap: str) -> None:
    """Form → received → intake worker → accepted; the receipt page shows, and no topic holds a typed value."""
    with httpx.Client(base_url=api.url, timeout=30) as browser:
        fields = form_fields(browser.get("/").text)
        confirmation = browser.post("/", content=urlencode(fields),
                                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert confirmation.status_code == 200, confirmation.text
    assert "Information sent" in confirmation.text

    accepted = wait_for(kafka_bootstrap, topics[ACCEPTED.name], lambda r: True, timeout=180)
    received = read_all(kafka_bootstrap, topics[RECEIVED.name])
    assert len(received) == 1
    assert_no_canaries([*received, accepted])

    transport = load_intake_keys(api.settings)  # the intake worker's key: the edge has no key that opens this
    value = json.loads(accepted.value)
    # Past the edge a record says only the day, never the moment or the channel (they would link it).
    assert set(value) == {"submission_id", "received_on", "sealed_submission"}
    assert value["received_on"] == utc_today().isoformat()
    assert accepted.timestamp == day_timestamp() * 1000
    opened = json.loads(open_sealed(_envelope(value), value["submission_id"].encode(), transport))
    assert opened["source"]["email"] == CANARIES["source.email"]
    assert opened["information"] == INFORMATION


def _envelope(value: dict[str, Any]) -> Any:
    from schemas import SealedEnvelope

    return SealedEnvelope.model_validate(value["sealed_submission"])


def test_the_worker_rejects_with_codes_only_and_dead_letters_garbage(
        api: LiveApi, topics: dict[str, str], intake_worker: subprocess.Popen[bytes], kafka_bootstrap: str) -> None:
    """An invalid sealed submission becomes a rejection with codes and paths only; undecodable bytes a dead letter."""
    transport_key = load_edge_keys(api.settings)
    from schemas import Submission

    # A record as a partner's buggy client might have got past an older edge: valid shape, urgent.
    data = valid_submission(information=INFORMATION)
    data["source"].update(name=CANARIES["source.name"], email=CANARIES["source.email"])
    submission = Submission.model_validate(data)
    record = received_record(submission, transport_key)
    urgent = Submission.model_validate({**data, "urgency": {"immediate_risk": True, "crime_in_progress": False}})
    urgent_record = received_record(urgent, transport_key)
    produce(kafka_bootstrap, topics[RECEIVED.name], urgent_record.model_dump_json().encode())
    produce(kafka_bootstrap, topics[RECEIVED.name], b"\x00not a received submission")
    produce(kafka_bootstrap, topics[RECEIVED.name], record.model_dump_json().encode())

    rejected = wait_for(kafka_bootstrap, topics[REJECTED.name], lambda r: True, timeout=180)
    letter = wait_for(kafka_bootstrap, topics[DEADLETTER.name], lambda r: True, timeout=60)
    wait_for(kafka_bootstrap, topics[ACCEPTED.name], lambda r: True, timeout=60)
    rejection = RejectedSubmission.model_validate_json(rejected.value)
    assert rejection.submission_id == urgent_record.submission_id
    assert [(e.path, e.code) for e in rejection.errors] == [("/urgency", "urgent_call_999")]
    assert set(json.loads(rejected.value)) == {"submission_id", "received_on", "errors", "status"}
    assert letter.value == b"\x00not a received submission"
    assert DeadLetter.from_headers(letter.headers).stage == "intake"
    assert_no_canaries([rejected, letter])


def test_the_api_produces_once_per_idempotency_key_on_the_real_broker(
        api: LiveApi, topics: dict[str, str], kafka_bootstrap: str) -> None:
    """Two posts with the same key give the same receipt and exactly one record on the received topic."""
    body = valid_submission(idempotency_key="partner-0042")
    with httpx.Client(base_url=api.url, timeout=30, headers=api.auth) as client:
        first = client.post("/api/v1/submissions", json=body)
        second = client.post("/api/v1/submissions", json=body)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    records = read_all(kafka_bootstrap, topics[RECEIVED.name])
    assert len(records) == 1
    assert ReceivedSubmission.model_validate_json(records[0].value).received_on == utc_today()
    assert records[0].timestamp == day_timestamp() * 1000


def test_cpi_import_puts_valid_lines_on_the_received_topic_sealed(
        kafka_bootstrap: str, topic_prefix: str, topics: dict[str, str], tmp_path: Path) -> None:
    """`cpi import FILE` sends valid lines as channel import, reports rejected ones, prints a summary."""
    lines = [valid_submission(information=INFORMATION) for _ in range(3)]
    for line in lines:
        line["source"]["email"] = CANARIES["source.email"]
    path = tmp_path / "bulk.jsonl"
    path.write_text("\n".join([*(json.dumps(line) for line in lines), '{"broken": ']) + "\n")
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
           "CPI_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "services.cli", "import", str(path)], env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 1  # one line was rejected
    assert "3 sent" in done.stderr and "1 rejected" in done.stderr
    assert json.loads(done.stdout)["line"] == 4
    records = read_all(kafka_bootstrap, topics[RECEIVED.name])
    assert len(records) == 3
    assert {ReceivedSubmission.model_validate_json(r.value).received_on for r in records} == {utc_today()}
    assert_no_canaries(records)
