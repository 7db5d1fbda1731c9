"""The console's held-review gauges: counts from the held topic, read at most once per refresh, never blanked."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest

from schemas import HeldIntel
from schemas.base import utc_today
from services.common.envelope import PrivateKeyring
from services.console.metrics import HeldReviewCollector
from services.sanitiser.held import hold
from services.sanitiser.residual import assess_residual_risk
from tests.unit.held.test_held import intel


def _held(days_ago: int, keyring: PrivateKeyring) -> HeldIntel:
    item = intel()
    return hold(item, assess_residual_risk(item), keyring.recipient(), held_on=utc_today() - timedelta(days=days_ago))


def test_held_gauges_show_counts_only_and_read_the_topic_once_per_refresh() -> None:
    """Three held, one older than the target: waiting 3, overdue 1; a second scrape within the refresh does
    not read again; the page carries no intel id, day or reason code; a failed read keeps the last counts."""
    keyring = PrivateKeyring.generate("unseal")
    records = [_held(0, keyring), _held(1, keyring), _held(5, keyring)]
    reads: list[int] = []

    def read() -> list[HeldIntel]:
        reads.append(1)
        if len(reads) > 1:
            raise ConnectionError("broker away")
        return records

    registry = CollectorRegistry()
    collector = HeldReviewCollector(read, target_days=2, refresh=3600)
    registry.register(collector)
    assert reads == [], "registering does not read the topic"
    page = generate_latest(registry).decode()
    assert "cpi_held_waiting 3.0" in page and "cpi_held_overdue 1.0" in page
    generate_latest(registry)
    assert len(reads) == 1
    for record in records:
        assert record.intel_id not in page and record.held_on.isoformat() not in page
        assert all(code not in page for code in record.reason_codes)
    collector._refresh = 0  # the next scrape reads again, and that read fails
    assert "cpi_held_waiting 3.0" in generate_latest(registry).decode()
    assert len(reads) == 2
