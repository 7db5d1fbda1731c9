"""Private data on disk: the data dir's folders 0700 and its files 0600, whoever creates them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import Category, Outcome, Priority, Team, WebhookAlert
from services.common.settings import IntakeSettings
from services.intake.idempotency import IdempotencyStore, Receipt, idempotency_path
from services.intake.protection import edge_secret
from services.notifier.adapters.delivery import OutboxTransport
from services.notifier.domain import EmailChannel, Notification


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems give a process (022), as an operator's shell would."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """Every path under `root` (itself included) -> its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def assert_private(root: Path) -> None:
    wrong = {name: oct(mode) for name, mode in modes(root).items()
             if mode != (0o700 if (root / name).is_dir() else 0o600)}
    assert wrong == {}


def test_what_the_edge_writes_is_private_even_under_the_usual_umask(tmp_path: Path, usual_umask: None) -> None:
    """Regression (issue 11): data files were 0644 in a 0755 folder. The edge's secret, the idempotency
    table with SQLite's -wal and -shm files, and an outbox message are 0600 in 0700 folders."""
    settings = IntakeSettings(data_dir=tmp_path / "data")
    edge_secret(settings)
    store = IdempotencyStore(idempotency_path(settings))
    store.claim("scope", "fingerprint", Receipt(receipt_id="r" * 32, received_at=datetime.now(UTC)))
    assert {p.name for p in idempotency_path(settings).parent.iterdir()} >= {
        "idempotency.db", "idempotency.db-wal", "idempotency.db-shm"}
    outbox = OutboxTransport(settings.data_dir / "outbox", "cpi@localhost")
    alert = WebhookAlert(notification_id="a" * 32, decision_id="d" * 32, intel_id="b" * 32, team=Team.CRIME_DESK,
                         outcome=Outcome.CRIME_DESK, priority=Priority.MEDIUM, categories=[Category("organised_crime")],
                         received_on=datetime.now(UTC).date(), rules_version="r", subject="s", body="b")
    outbox.deliver(Notification(notification_id="a" * 32, team=Team.CRIME_DESK, outcome=Outcome.CRIME_DESK,
                                subject="s", body="b", alert=alert, channel=EmailChannel(email="t@localhost"),
                                routing_version="v"))
    assert_private(settings.data_dir)
    store.close()


def test_every_cpi_process_keeps_the_data_dir_private(tmp_path: Path) -> None:
    """`cpi` tightens a data dir an earlier version left 0755 and, whatever its umask, what it creates
    there (keyring, edge secret, idempotency table) is 0600 in 0700 folders. (`cpi import` with no broker
    to reach: it creates its files, then stops.)"""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # noqa: S103 - the open folder an earlier version left, on purpose
    lines = tmp_path / "in.jsonl"
    lines.write_text("{}\n")
    env = {**os.environ, "CPI_DATA_DIR": str(data), "CPI_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-m", "services.cli", "import", str(lines)], env=env, timeout=60,
                          capture_output=True, text=True, check=False, umask=0o022)
    assert "cannot reach Kafka" in done.stderr
    assert (data / "intake" / "idempotency.db").exists()
    assert_private(data)
