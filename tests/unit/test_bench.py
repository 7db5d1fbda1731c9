"""The bench's pure parts: its percentiles, and which runs it refuses before starting anything."""

from __future__ import annotations

from typing import Any

import pytest

from services.bench_kafka import BenchRun, percentiles


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    """p50, p90, p99 and max of 1..100 ms are 50, 90, 99 and 100 ms; no values, no percentiles."""
    assert percentiles([n / 1000 for n in range(100, 0, -1)]) == {
        "count": 100, "p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    assert percentiles([]) is None


@pytest.mark.parametrize(("mode", "records", "rate"), [("open-loop", 10, None), ("backlog", 10, 5.0),
                                                       ("backlog", 0, None), ("open-loop", 10, 0.0)])
def test_a_run_that_cannot_be_done_is_refused(mode: Any, records: int, rate: float | None) -> None:
    """Open-loop without a rate, a rate on a backlog, or no records, is an error said before anything starts."""
    with pytest.raises(ValueError, match=r"bench run|rate"):
        BenchRun(mode=mode, records=records, rate=rate)
