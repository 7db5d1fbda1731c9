"""Prometheus metrics shared by every stage. Labels are stage names, results and codes, never content."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

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
CONSUMER_LAG = Gauge(
    "cpi_consumer_lag",
    "Records on an input partition this stage's group has not committed (end offset minus committed offset),"
    " per partition assigned to this worker, read every CPI_PROGRESS_INTERVAL_SECONDS.",
    ["stage", "topic", "partition"],
)
# Not "time since the record's timestamp": past the edge that is the day's midnight, on purpose (days.py), and
# no exact time may travel with a record. See services/common/kafka/progress.py for how it is measured instead.
STAGE_LATENCY = Histogram(
    "cpi_stage_latency_seconds",
    "Time from an input record reaching this stage's input topic to its outputs being acknowledged: waiting in"
    " Kafka, in a mixing pool and being processed. Measured from the stage's own readings of its partitions'"
    " end offsets, so it is long by less than one reading interval (CPI_PROGRESS_INTERVAL_SECONDS); a record"
    " already waiting when the worker was given its partition is not measured. End to end is the sum of the"
    " stages (received to decided: intake + sanitiser + router; decided to notified: notifier).",
    ["stage"],
    buckets=(0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0),
)


def exposition() -> tuple[bytes, str]:
    """Every metric of this process in Prometheus text format, and its content type; no `_created` series."""
    return generate_latest(), CONTENT_TYPE_LATEST
