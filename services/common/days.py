"""Time coarsened to the UTC day: all that travels with a record after the edge.

An exact time next to a record lets anyone who saw a submission arrive (or knows when a professional
sent one) follow it through the topics to its intel, so records past the edge carry the day only,
and their Kafka timestamps are that day's midnight.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_today(moment: datetime | None = None) -> date:
    """The UTC day of `moment` (now by default)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).date()


def day_timestamp(moment: datetime | date | None = None) -> float:
    """Midnight UTC of the day, in seconds since the epoch: the record timestamp past the edge."""
    day = moment if isinstance(moment, date) and not isinstance(moment, datetime) else utc_today(moment)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
