"""The console's metrics: counts by action and result code, and the review feed's last poll time; never an id,
a reason or a name."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import structlog
from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import services.common.metrics  # noqa: F401 - no `_created` series in this process either
from schemas import HeldIntel
from schemas.base import utc_today
from services.sanitiser.held import ReviewClock, review_clock

log = structlog.get_logger(__name__)

SIGN_INS = Counter("cpi_console_sign_ins_total", "Console sign-ins, by result.", ["result"])
HELD_ACTIONS = Counter("cpi_console_held_actions_total", "Held-intel actions in the console, by action and result.",
                       ["action", "result"])
RECONTACT = Counter("cpi_console_recontact_total", "Re-contact request steps done, by step and result.",
                    ["step", "result"])
DECISION_REVIEWS = Counter("cpi_console_decision_reviews_total",
                           "Handlers' reviews of decisions, by action (confirm, amend) and result (sent, invalid, "
                           "stale_revision, role_not_permitted, unsent).", ["action", "result"])
# The console is the long-running process every re-contact goes through, so its /metrics is where a refused attempt
# can alert (CpiRecontactRefused); `audit_unavailable` counts what was refused because the audit topic was away.
RECONTACT_REFUSED = Counter("cpi_console_recontact_refused_total",
                            "Re-contact attempts refused (and audited where the audit could be written), by step and "
                            "reason code.", ["step", "reason"])
CSRF_REFUSED = Counter("cpi_console_csrf_refused_total", "Console POSTs refused for a missing or wrong CSRF token.")
DECISIONS_READ = Counter("cpi_console_decisions_read_total",
                         "Decisions the review queue read from cpi.outcome.decided.v1, by result.", ["result"])
FEED_POLLED = Gauge("cpi_console_decision_feed_polled_timestamp_seconds",
                    "When the review queue's consumer last polled cpi.outcome.decided.v1 (Unix time): a stale "
                    "queue looks like an empty one to a handler.")


class HeldReviewCollector(Collector):
    """cpi_held_waiting and cpi_held_overdue, counted from the held topic at most once per `refresh` seconds (a
    scrape every 15 s must not read the topic each time). Counts only: no id, no day, no reason code.

    `read` returns the held records not yet released (the console's HeldReview.waiting); if it fails, the last
    counts stand and the failure is logged, so a broker briefly away does not blank the panel."""

    def __init__(self, read: Callable[[], list[HeldIntel]], target_days: int, refresh: float) -> None:
        self._read, self._target_days, self._refresh = read, target_days, refresh
        self._lock = threading.Lock()  # the metrics server answers each scrape on a thread of its own
        self._clock: ReviewClock | None = None
        self._read_at = -math.inf

    def describe(self) -> list[Metric]:
        # Names only, so registering does not read the topic.
        return list(_held_families())

    def collect(self) -> list[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self._refresh:
                try:
                    self._clock = review_clock(self._read(), utc_today(), self._target_days)
                    self._read_at = time.monotonic()
                except Exception as exc:
                    log.warning("held_counts_unread", error=type(exc).__name__)
            clock = self._clock
        waiting, overdue = _held_families()
        if clock is not None:
            waiting.add_metric([], clock.waiting)
            overdue.add_metric([], clock.overdue)
        return [waiting, overdue]


def _held_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    return GaugeMetricFamily("cpi_held_waiting", _WAITING), GaugeMetricFamily("cpi_held_overdue", _OVERDUE)


_WAITING = "Reports held for Intelligence Unit review and not yet released."
_OVERDUE = "Held reports waiting more days than the review target (CPI_HELD_REVIEW_TARGET_DAYS) since the day held."
