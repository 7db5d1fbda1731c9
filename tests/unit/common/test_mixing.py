"""The mixing pool a stage releases through: by size or by age, shuffled, acked only after publishing; and a
batch handler's outcomes, with a failed batch handled one input at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas.topics import SANITISED
from services.common.kafka.stage import Mixing, MixingPool, Outcome, Publish, batch_outcomes, one_at_a_time


@dataclass
class Message:
    offset: int
    value: bytes


@dataclass
class Event:
    message: Message

    @property
    def value(self) -> bytes:
        return self.message.value


@dataclass
class Stage:
    """What the pool talks to: the handler's order, what was published and when each input was acked."""

    processed: list[int] = field(default_factory=list)
    published: list[list[int]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    async def process(self, batch: Sequence[Any]) -> list[Publish]:
        self.processed.extend(event.message.offset for event in batch)
        return [Publish(topic=SANITISED, key=b"k", value=event.value) for event in batch]

    async def publish(self, records: Sequence[Publish]) -> None:
        self.published.append([int(r.value) for r in records])
        self.log.append(f"published {len(records)}")

    async def ack(self, event: Any) -> bool:
        self.acked.append(event.message.offset)
        self.log.append(f"acked {event.message.offset}")
        return True


def events(count: int) -> list[Event]:
    return [Event(Message(offset=i, value=str(i).encode())) for i in range(count)]


async def test_a_full_pool_is_released_shuffled_and_acked_in_arrival_order_after_publishing() -> None:
    """Reaching min_records releases the whole pool at once; it is processed and published in one random
    order, and only then acked, every input, in arrival order."""
    stage = Stage()
    pool = MixingPool("sanitiser", Mixing(min_records=50, max_wait_seconds=600), stage.process, stage.publish)
    for event in events(49):
        await pool.add(event, stage)  # type: ignore[arg-type]
    assert stage.published == [] and stage.acked == []
    await pool.add(events(50)[49], stage)  # type: ignore[arg-type]
    assert len(stage.published) == 1
    assert sorted(stage.published[0]) == list(range(50))
    assert stage.published[0] == stage.processed  # stored (processed) in the order published
    assert stage.published[0] != list(range(50))  # 1 in 50! that a shuffle leaves them in order
    assert stage.acked == list(range(50))
    assert stage.log[0] == "published 50"  # nothing acked before its outputs were acknowledged


async def test_a_quiet_pool_is_released_when_its_oldest_input_has_waited_long_enough() -> None:
    """Fewer inputs than min_records still go out once the oldest has waited max_wait_seconds."""
    stage = Stage()
    pool = MixingPool("sanitiser", Mixing(min_records=100, max_wait_seconds=0.2), stage.process, stage.publish)
    timer = asyncio.ensure_future(pool.release_when_due(stage))  # type: ignore[arg-type]
    try:
        for event in events(3):
            await pool.add(event, stage)  # type: ignore[arg-type]
        assert stage.published == []
        for _ in range(100):
            await asyncio.sleep(0.05)
            if stage.published:
                break
        assert [sorted(batch) for batch in stage.published] == [[0, 1, 2]]
        assert stage.acked == [0, 1, 2]
    finally:
        timer.cancel()


async def test_one_record_pools_release_each_input_at_once() -> None:
    """min_records 1 turns mixing off: each input is published and acked as it arrives."""
    stage = Stage()
    pool = MixingPool("sanitiser", Mixing(min_records=1, max_wait_seconds=600), stage.process, stage.publish)
    for event in events(3):
        await pool.add(event, stage)  # type: ignore[arg-type]
    assert stage.published == [[0], [1], [2]]


@pytest.mark.parametrize(("records", "wait"), [(0, 1.0), (5, 0.0), (5, -1.0)])
def test_a_pool_that_could_never_release_is_refused(records: int, wait: float) -> None:
    """A pool of no records or no waiting time is a configuration error, said at start-up."""
    with pytest.raises(ValueError, match="mixing needs"):
        Mixing(min_records=records, max_wait_seconds=wait)


async def test_an_unshuffled_pool_is_a_batch_in_arrival_order() -> None:
    """A plain batch (every stage but the sanitiser): processed and published in arrival order, so order per key
    is kept, acked only after the whole batch is published; a quiet batch goes out after its few milliseconds."""
    stage = Stage()
    pool = MixingPool("router", Mixing(min_records=4, max_wait_seconds=0.005, shuffle=False), stage.process,
                      stage.publish)
    timer = asyncio.ensure_future(pool.release_when_due(stage))  # type: ignore[arg-type]
    try:
        for event in events(6):
            await pool.add(event, stage)  # type: ignore[arg-type]
        assert stage.published == [[0, 1, 2, 3]] and stage.acked == [0, 1, 2, 3]
        assert stage.log[:2] == ["published 4", "acked 0"]
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(stage.published) == 2:
                break
        assert stage.published == [[0, 1, 2, 3], [4, 5]] and stage.processed == list(range(6))
        assert stage.acked == list(range(6))
    finally:
        timer.cancel()


async def test_a_batch_that_fails_as_a_whole_is_handled_one_input_at_a_time() -> None:
    """A batch handler that raises for the batch (one poison input spoils a store transaction) gets each input
    alone, so only the poison one becomes an exception (a dead letter) and the others keep their outputs."""
    calls: list[list[bytes]] = []

    async def handle(values: Sequence[bytes]) -> Sequence[Outcome]:
        calls.append(list(values))
        if b"poison" in values:
            raise RuntimeError("the transaction failed")
        return [[Publish(topic=SANITISED, key=b"k", value=value)] for value in values]

    outcomes = await batch_outcomes([b"a", b"poison", b"c"], handle)
    assert calls == [[b"a", b"poison", b"c"], [b"a"], [b"poison"], [b"c"]]
    assert [o if isinstance(o, Exception) else [p.value for p in o] for o in outcomes][0::2] == [[b"a"], [b"c"]]
    assert isinstance(outcomes[1], RuntimeError)


async def test_a_batch_handler_giving_the_wrong_number_of_outcomes_is_not_trusted() -> None:
    """Outcomes that do not line up one per input would misattribute outputs: the batch is handled one input at a
    time instead, and an input whose handler still answers wrongly is an exception (dead-lettered), not lost."""

    async def handle(values: Sequence[bytes]) -> Sequence[Outcome]:
        return [[Publish(topic=SANITISED, key=b"k", value=b"x")]] * (len(values) + 1)

    outcomes = await batch_outcomes([b"a", b"b"], handle)
    assert all(isinstance(o, Exception) for o in outcomes) and len(outcomes) == 2


async def test_one_at_a_time_raises_the_inputs_own_exception() -> None:
    """A batch handler used for a single input returns that input's outputs, or raises its exception."""

    async def handle(values: Sequence[bytes]) -> Sequence[Outcome]:
        return [ValueError("bad") if value == b"bad" else [Publish(topic=SANITISED, key=b"k", value=value)]
                for value in values]

    assert [p.value for p in await one_at_a_time(handle)(b"ok")] == [b"ok"]
    with pytest.raises(ValueError, match="bad"):
        await one_at_a_time(handle)(b"bad")
