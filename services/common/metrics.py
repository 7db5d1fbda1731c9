"""Prometheus metrics shared by every stage. Labels are stage names, results and codes, never content."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, disable_created_metrics, generate_latest

# A `_created` series is when each labelled child first counted, to the microsecond: a poller sees the
# moment the first submission of a kind arrived. No process exports them (checked when scraped).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client

MESSAGES = Counter(
    "cpi_messages_total",
    "Messages a stage finished with, by result (processed or dead_lettered).",
    ["stage", "result"],
)
DEAD_LETTERS = Counter(
    "cpi_deadletters_total",
    "Messages sent to the dead-letter topic, by stage and error code.",
    ["stage", "error_code"],
)
PROCESSING_SECONDS = Histogram(
    "cpi_processing_seconds",
    "Time from taking a message to having published its results.",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PUBLISHED = Counter(
    "cpi_published_total",
    "Records a stage published, by topic.",
    ["stage", "topic"],
)
RELEASED_RECORDS = Histogram(
    "cpi_stage_released_records",
    "Inputs per batch a stage processed and published together; for the sanitiser's shuffled releases, how many "
    "each output hides among.",
    ["stage"],
    buckets=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500),
)


def exposition() -> tuple[bytes, str]:
    """Every metric of this process in Prometheus text format, and its content type; no `_created` series."""
    return generate_latest(), CONTENT_TYPE_LATEST
