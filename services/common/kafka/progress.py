"""How far behind a stage is, and how long its inputs waited, without a timestamp on any record. Pure.

Records past the edge carry their day only (services/common/days.py: an exact time would link an intel
to its submission), so no stage can read from a record when it was written, and none may add such a
time to a record. Instead each worker reads its own input partitions' end offsets every few seconds
(`OffsetClock.observe`) and remembers, per partition, the last moment each end offset was seen. Record
`o` was not yet written at the last moment the end offset was still at or below `o`, so "now minus that
moment" is how long the record has been waiting at most, too long by less than one reading interval,
never too short. The readings stay in the worker's memory and only their aggregate (a histogram per
stage) leaves it: nothing about which record was written when goes on a topic, a log or a metric.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable


class OffsetClock:
    """Per partition, (end offset, last moment seen) readings in time order, end offsets non-decreasing."""

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep  # readings kept per partition; older ones are for records long consumed
        self._readings: dict[Hashable, list[tuple[int, float]]] = {}

    def observe(self, partition: Hashable, end_offset: int, at: float) -> None:
        """The partition's end offset (the next offset to be written), read at monotonic time `at`, taken
        just before the request was sent, so the reading was true at `at` or later."""
        readings = self._readings.setdefault(partition, [])
        if readings and end_offset < readings[-1][0]:
            readings.clear()  # the partition was truncated or recreated: older readings say nothing now
        if readings and readings[-1][0] == end_offset:
            readings[-1] = (end_offset, at)  # the same end seen later: only the latest moment counts
        else:
            readings.append((end_offset, at))
        if len(readings) > self._keep:
            del readings[: len(readings) - self._keep]

    def not_written_at(self, partition: Hashable, offset: int) -> float | None:
        """The last moment record `offset` was seen not yet written, or None when every reading kept was
        taken after it was written (the worker started, or was given the partition, with it waiting).

        Offsets of one partition are asked in increasing order, so readings before the answer are dropped."""
        readings = self._readings.get(partition)
        if not readings:
            return None
        index = bisect_right(readings, offset, key=lambda reading: reading[0]) - 1
        if index < 0:
            return None
        del readings[:index]
        return readings[0][1]

    def forget(self, partition: Hashable) -> None:
        """A partition no longer assigned to this worker."""
        self._readings.pop(partition, None)


def lag(end_offset: int, committed: int | None, earliest: int) -> int:
    """Records on the partition this group has not committed: from its committed offset (or, with none
    committed yet, the log's start, since workers read from the earliest) to the end."""
    start = earliest if committed is None else committed
    return max(end_offset - start, 0)
