"""The offset clock and lag: how long a record waited, read from end offsets alone, and how far behind a group is."""

from __future__ import annotations

from services.common.kafka.progress import OffsetClock, lag


def test_a_record_waited_since_the_last_reading_that_did_not_have_it() -> None:
    """Record 3 first appears in the reading at t=20 (end 4), so it was not yet written at t=10 (end 3): it has
    waited since t=10 at most, never less than since t=20."""
    clock = OffsetClock()
    for at, end in [(0.0, 0), (10.0, 3), (20.0, 4), (30.0, 9)]:
        clock.observe("p0", end, at)
    assert clock.not_written_at("p0", 3) == 10.0
    assert clock.not_written_at("p0", 4) == 20.0
    assert clock.not_written_at("p0", 8) == 20.0


def test_the_latest_moment_an_end_offset_was_seen_is_the_one_kept() -> None:
    """A quiet partition read again and again with the same end: the record written after it waited only since
    the last of those readings, not since the first."""
    clock = OffsetClock()
    for at in (0.0, 5.0, 10.0, 15.0):
        clock.observe("p0", 7, at)
    assert clock.not_written_at("p0", 7) == 15.0


def test_a_record_consumed_before_the_next_reading_counts_from_the_last_one() -> None:
    """Written after the last reading (end 5 at t=40) and consumed before the next: waited since t=40 at most."""
    clock = OffsetClock()
    clock.observe("p0", 5, 40.0)
    assert clock.not_written_at("p0", 5) == 40.0
    assert clock.not_written_at("p0", 12) == 40.0


def test_a_record_already_there_at_the_first_reading_is_not_measured() -> None:
    """The worker was given the partition with records waiting: when they were written is unknown, so no figure
    is made up for them; a partition never read has none either."""
    clock = OffsetClock()
    clock.observe("p0", 10, 100.0)
    assert clock.not_written_at("p0", 4) is None
    assert clock.not_written_at("p1", 0) is None


def test_partitions_are_apart_and_a_forgotten_one_starts_again() -> None:
    """Readings of one partition say nothing about another; a partition handed away loses its readings."""
    clock = OffsetClock()
    clock.observe("p0", 2, 1.0)
    clock.observe("p1", 50, 2.0)
    assert clock.not_written_at("p0", 2) == 1.0
    assert clock.not_written_at("p1", 2) is None
    clock.forget("p0")
    assert clock.not_written_at("p0", 2) is None


def test_a_recreated_partition_drops_the_readings_of_the_old_one() -> None:
    """An end offset lower than before (topic recreated): the old readings would date new records wrongly."""
    clock = OffsetClock()
    clock.observe("p0", 100, 1.0)
    clock.observe("p0", 0, 2.0)
    assert clock.not_written_at("p0", 0) == 2.0


def test_readings_kept_per_partition_are_bounded() -> None:
    """A worker left running keeps at most `keep` readings per partition, the newest."""
    clock = OffsetClock(keep=3)
    for end in range(10):
        clock.observe("p0", end, float(end))
    assert clock.not_written_at("p0", 6) is None
    assert clock.not_written_at("p0", 7) == 7.0


def test_lag_is_from_the_committed_offset_or_the_log_start_to_the_end() -> None:
    """Lag counts uncommitted records: end minus committed, or minus the log's start before any commit;
    never negative."""
    assert lag(120, 100, 0) == 20
    assert lag(120, None, 30) == 90
    assert lag(120, 125, 0) == 0
