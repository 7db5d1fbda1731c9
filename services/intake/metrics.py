"""Prometheus metrics of the intake edge and worker. Labels are channels, codes and routes, never content."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from services.intake.domain import CODES

SUBMISSIONS = Counter(
    "cpi_intake_submissions_total",
    "Submissions received, by channel and result (received, rejected, duplicate).",
    ["channel", "result"],
)
REJECTIONS = Counter(
    "cpi_intake_rejections_total",
    "Problems found in rejected submissions, by channel and validation code.",
    ["channel", "code"],
)
REQUEST_SECONDS = Histogram(
    "cpi_intake_request_seconds",
    "Time to answer an HTTP request at the intake edge, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMITED = Counter(
    "cpi_intake_rate_limited_total",
    "Requests refused with 429 because a client went past its rate limit.",
)
READ_TIMEOUTS = Counter(
    "cpi_intake_read_timeouts_total",
    "Connections closed because a request's headers or body were not sent in time, by phase.",
    ["phase"],
)
UNAUTHENTICATED = Counter(
    "cpi_intake_unauthenticated_total",
    "API requests refused with 401: no API key, or one no partner holds.",
)


def count_rejection(channel: str, codes: list[str]) -> None:
    """One increment per distinct code; unknown codes are folded into 'invalid' so labels stay bounded."""
    for code in set(codes):
        REJECTIONS.labels(channel, code if code in CODES else "invalid").inc()
