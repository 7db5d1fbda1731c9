"""The sanitiser worker, as its own process on a real broker, when its sealed store is briefly away."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas import AcceptedSubmission, Submission
from schemas.topics import ACCEPTED, DEADLETTER, SANITISED
from services.common.kafka.broker import free_port
from services.common.keys import load_edge_keys, load_intake_keys, load_sanitiser_keys
from services.common.serde import encode
from services.intake.receiving import received_record
from services.intake.worker import check_received
from services.sanitiser.adapters import open_sealed_store
from tests.kafka_helpers import produce, read_all, wait_for, worker_process
from tests.key_helpers import key_settings

pytestmark = pytest.mark.kafka

SUBMISSION = {
    "source": {"name": "Odile Brackenbury", "role": "Health Visitor", "organisation": "Fenwick Health Centre",
               "organisation_type": "health", "email": "odile.b@fenwick.example"},
    "lawful_basis": "safeguarding", "urgency": {"immediate_risk": False, "crime_in_progress": False},
    "categories": ["modern_slavery"], "how_known": "witnessed_directly",
    "information": "Six men live above the car wash on Dock Street; they say their boss keeps their passports.",
}


def test_a_locked_store_delays_the_sanitiser_but_dead_letters_nothing(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """While the sealed store is locked by another writer the worker retries the same message instead
    of dead-lettering it; once the lock is released the intel is published and nothing is dead-lettered."""
    names = topic_factory(ACCEPTED, SANITISED, DEADLETTER)
    settings = key_settings(tmp_path)
    open_sealed_store(f"sqlite:///{tmp_path / 'sealed.db'}", load_sanitiser_keys(settings).store).close()
    received = received_record(Submission.model_validate(SUBMISSION), load_edge_keys(settings))
    accepted = check_received(received, load_intake_keys(settings))
    assert isinstance(accepted, AcceptedSubmission)

    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
           "CPI_DATA_DIR": str(tmp_path), "CPI_RELEASE_MAX_WAIT_SECONDS": "1"}
    log = tmp_path / "worker.log"
    blocker = sqlite3.connect(tmp_path / "sealed.db", timeout=0, isolation_level=None)
    try:
        with worker_process("sanitiser", env, free_port(), log) as worker:
            blocker.execute("BEGIN IMMEDIATE")  # another writer holds the store
            produce(kafka_bootstrap, names[ACCEPTED.name], encode(accepted), accepted.submission_id.encode())
            deadline = time.monotonic() + 60
            while b"transient_failure" not in log.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert b"transient_failure" in log.read_bytes()
            assert read_all(kafka_bootstrap, names[SANITISED.name]) == []
            blocker.execute("ROLLBACK")  # the store is back

            intel = wait_for(kafka_bootstrap, names[SANITISED.name], lambda r: b"Dock Street" in r.value)
            assert b"Brackenbury" not in intel.value
            assert read_all(kafka_bootstrap, names[DEADLETTER.name]) == []
            assert worker.poll() is None, "the worker kept running"
    finally:
        blocker.close()
