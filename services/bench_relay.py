"""`cpi bench --kafka`'s baseline: a raw relay, the most the broker carries with the pipeline's guarantees.

Four pass-through hops, each its own process like the four workers: an aiokafka consumer takes a batch (at most
the stages' batch size), an idempotent acks=all producer sends every record to the next topic, the hop waits
for every acknowledgement and only then commits. No decoding, no work: what is left of the pipeline's time
once its own code is taken away. Run in the same process run as the pipeline, on the same values and the same
partition count, so the ratio between the two compares like with like on one loaded machine.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.kafka import clients
from services.common.settings import PlatformSettings

HOPS = 4
_READY = b"ready\n"


@dataclass(frozen=True)
class RelayResult:
    """How long the relay took to carry every record through all its hops, and the hops' CPU time."""

    records: int
    seconds: float
    cpu_seconds: float

    def report(self) -> dict[str, Any]:
        return {"records": self.records, "hops": HOPS, "all_seconds": round(self.seconds, 3),
                "per_second": round(self.records / self.seconds, 1), "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_ms_per_record": round(1000 * self.cpu_seconds / self.records, 3)}


def relay_topics(settings: PlatformSettings) -> list[str]:
    return [settings.topic(f"bench.relay.{n}") for n in range(HOPS + 1)]


def create_relay_topics(settings: PlatformSettings, partitions: int) -> None:
    from kafka.admin import NewTopic

    admin = clients.admin_client(settings)
    try:
        admin.create_topics([NewTopic(name, partitions, 1) for name in relay_topics(settings)])
    finally:
        admin.close()


async def hop(settings: PlatformSettings, source: str, target: str, partitions: int, count: int,
              batch: int) -> None:
    """Relay `count` records from `source` to the same partition of `target`: batch, send, wait, commit."""
    from aiokafka import TopicPartition

    consumer = clients.async_consumer(settings, group_id=f"{source}.relay", enable_auto_commit=False,
                                      auto_offset_reset="earliest")
    producer = clients.async_producer(settings, enable_idempotence=True, linger_ms=1)
    await producer.start()
    await consumer.start()
    try:
        assigned = [TopicPartition(source, p) for p in range(partitions)]
        consumer.assign(assigned)
        # Metadata and start positions fetched before the clock starts: the relay is timed, not its start-up.
        await producer.partitions_for(target)
        for tp in assigned:
            await consumer.position(tp)
        sys.stdout.buffer.write(_READY)
        sys.stdout.flush()
        relayed = 0
        while relayed < count:
            taken = await consumer.getmany(timeout_ms=100, max_records=batch)
            sent = [await producer.send(target, record.value, key=record.key, partition=tp.partition)
                    for tp, records in taken.items() for record in records]
            await asyncio.gather(*sent)
            if sent:
                await consumer.commit()
            relayed += len(sent)
        # Said at once, before the clients stop: the bench times the relay by the last hop's word.
        sys.stdout.buffer.write(f"done {time.process_time():.3f}\n".encode())
        sys.stdout.flush()
    finally:
        await consumer.stop()
        await producer.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # Fields after the command name (which may hold spaces, so split after its closing parenthesis).
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_relay(settings: PlatformSettings, env: dict[str, str], values: Sequence[tuple[bytes, bytes]],
              partitions: int, batch: int) -> RelayResult:
    """Carry `values` (key, value) through four hops on fresh topics; time from the first send until the last
    topic holds them all."""
    topics = relay_topics(settings)
    create_relay_topics(settings, partitions)
    hops = [subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "services.bench_relay", source, target, str(partitions), str(len(values)), str(batch)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for source, target in itertools.pairwise(topics)]
    try:
        for process in hops:
            assert process.stdout is not None
            if process.stdout.readline() != _READY:
                raise RuntimeError("a relay hop did not start")
        producer = clients.producer(settings, linger_ms=5, enable_idempotence=True)
        producer.partitions_for(topics[0])  # connected before the clock starts
        started = time.monotonic()
        for key, value in values:
            producer.send(topics[0], value=value, key=key)
        producer.flush()
        producer.close()
        cpu = [_done(process) for process in reversed(hops)]  # the last hop finishes last
        seconds = time.monotonic() - started
        for process in hops:
            process.wait(30)
        return RelayResult(len(values), seconds, sum(cpu))
    finally:
        for process in hops:
            if process.poll() is None:
                process.kill()
                process.wait()


def _done(process: subprocess.Popen[bytes]) -> float:
    """Wait for a hop to say it has relayed everything; the CPU seconds it used."""
    assert process.stdout is not None
    word, _, cpu = process.stdout.readline().decode().partition(" ")
    if word != "done":
        raise RuntimeError("a relay hop stopped before relaying every record")
    return float(cpu)


def main() -> None:
    source, target, partitions, count, batch = sys.argv[1:6]
    asyncio.run(hop(PlatformSettings(), source, target, int(partitions), int(count), int(batch)))


if __name__ == "__main__":
    main()
