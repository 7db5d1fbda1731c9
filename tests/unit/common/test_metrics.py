"""What every process exports to Prometheus."""

from __future__ import annotations

from services.common.metrics import MESSAGES, PROCESSING_SECONDS, exposition


def test_no_process_exports_created_series() -> None:
    """Regression (issue 11): each labelled child's `_created` series gave, to the microsecond, when the
    first message of its kind arrived. The shared exposition (every worker's and the edge's) has none."""
    MESSAGES.labels("probe-stage", "processed").inc()
    PROCESSING_SECONDS.labels("probe-stage").observe(0.01)
    body, content_type = exposition()
    text = body.decode()
    assert 'cpi_messages_total{result="processed",stage="probe-stage"}' in text
    assert "_created" not in text
    assert content_type.startswith("text/plain")
