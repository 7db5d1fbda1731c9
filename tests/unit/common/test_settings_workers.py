"""A worker's consumer-group settings: what a dead worker costs, checked when the settings are read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.settings import WorkerSettings


def test_a_dead_worker_costs_seconds_by_default_not_faust_s_minute() -> None:
    """By default a worker's session times out in 10 s with heartbeats every second (faust's own default,
    60 s, stalled a stage a minute per kill), and it has no static identity unless given one."""
    settings = WorkerSettings()
    assert (settings.session_timeout_seconds, settings.heartbeat_interval_seconds) == (10.0, 1.0)
    assert settings.group_instance_id is None


@pytest.mark.parametrize(("session", "heartbeat"), [(10, 4), (6, 2.5), (5, 1)])
def test_heartbeats_too_slow_for_the_session_or_a_session_below_the_brokers_floor_are_refused(
    session: float, heartbeat: float
) -> None:
    """Heartbeats must come at least three times per session, and a session is at least 6 s (the broker's
    default group.min.session.timeout.ms): anything else is refused when the settings are read."""
    with pytest.raises(ValidationError):
        WorkerSettings(session_timeout_seconds=session, heartbeat_interval_seconds=heartbeat)
