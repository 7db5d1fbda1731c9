"""The alert rules as Prometheus itself reads them: promtool checks the rule file and runs its unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.metric_queries import ALERT_TESTS, ALERTS
from tests.promtool import run_promtool

# Building promtool the first time (when .ci/run has not) takes minutes.
pytestmark = pytest.mark.timeout(3600)


def test_promtool_accepts_the_alert_rules() -> None:
    """`promtool check rules` finds every rule of deploy/prometheus/alerts.yaml valid, all of them counted."""
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(group["rules"]) for group in yaml.safe_load(ALERTS.read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in result.stdout + result.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check is a real one: the same file with one expression broken fails it."""
    broken = tmp_path / "alerts.yaml"
    broken.write_text(ALERTS.read_text().replace("max(cpi_held_overdue) > 0", "max(cpi_held_overdue) >", 1))
    assert broken.read_text() != ALERTS.read_text()
    assert run_promtool("check", "rules", str(broken)).returncode != 0


def test_the_alert_rules_pass_their_unit_tests() -> None:
    """`promtool test rules`: lag that keeps rising alerts and steady lag does not; a source's details viewed
    alerts at once; held reports overdue for an hour alert; a router p95 of 29 minutes breaks the 15-minute
    received-to-decided target while a notifier within its 10 does not; the console's review feed, once it stops
    polling, alerts after 5 minutes stale and 5 more pending, never while it polls
    (deploy/prometheus/alerts.test.yaml)."""
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
