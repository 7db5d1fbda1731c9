"""`cpi bench --kafka`: the operators' benchmark. The four workers as separate processes on fresh topics, fed
realistic generated submissions, and in the same run the raw relay baseline (services/bench_relay.py).

Two modes:
- **backlog**: N submissions written at once (an outage's backlog, a bulk import); the time until every one is
  decided (or held, or dead-lettered) and every notification it calls for is delivered;
- **open-loop**: N submissions written at a fixed rate whatever the pipeline does; latency percentiles from
  received to decided, and from decided to notified.

How latency is measured without carrying times: past the edge no record may hold an exact time (DESIGN.md: it
would link an intel to its submission), so nothing is added to any record. Each generated submission's text
ends with a random reference of the bench's own (`Bench reference zq…`), which the sanitiser keeps like any
fact in a report; the bench notes when its producer wrote each one and when its own consumer saw the decision
with that reference, then the delivered records with that decision's id. Times stay in the bench's memory.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from schemas import Decision, NotificationRecord, Submission
from schemas.topics import DEADLETTER, DECIDED, DELIVERED, HELD, RECEIVED
from services.bench import generated_submissions
from services.bench_relay import cpu_seconds, raw_relay
from services.common.kafka import clients
from services.common.kafka.admin import apply_topics
from services.common.kafka.broker import LocalBroker, free_port
from services.common.kafka.principals import read_env_file, security_environment, with_connection
from services.common.keys import ensure_keys, load_edge_keys
from services.common.processes import stop_process, wait_until_ready
from services.common.serde import encode
from services.common.settings import NotifierSettings, PlatformSettings, WorkerSettings
from services.intake.receiving import received_record
from services.notifier.adapters.delivery import routing_from
from services.notifier.domain import RoutingTable, notifications_for

WORKERS = ("intake", "sanitiser", "router", "notifier")
_REFERENCE = re.compile(r"Bench reference (zq[0-9a-f]{12})\.")

Mode = Literal["backlog", "open-loop"]


@dataclass(frozen=True)
class BenchRun:
    """What to run: the mode, how many submissions, and (open-loop) how many per second."""

    mode: Mode = "backlog"
    records: int = 500
    rate: float | None = None

    def __post_init__(self) -> None:
        if self.records < 1:
            raise ValueError("a bench run needs at least one record")
        if (self.mode == "open-loop") != (self.rate is not None and self.rate > 0):
            raise ValueError("open-loop runs, and only they, need a rate above zero")


def bench_submissions(count: int, seed: int = 11) -> list[tuple[str, Submission]]:
    """Generated submissions, each with a random reference of the bench's own at the end of its text."""
    out = []
    for submission in generated_submissions(count, seed=seed):
        reference = f"zq{uuid.uuid4().hex[:12]}"
        text = f"{submission.information} Bench reference {reference}."
        out.append((reference, submission.model_copy(update={"information": text})))
    return out


@dataclass
class Watcher:
    """The bench's consumer end: when each decision and each delivered notification reached it."""

    settings: PlatformSettings
    table: RoutingTable
    decided: dict[str, float] = field(default_factory=dict)  # bench reference -> when its decision was seen
    decision_reference: dict[str, str] = field(default_factory=dict)  # decision id -> bench reference
    expected: dict[str, int] = field(default_factory=dict)  # decision id -> notifications it calls for
    delivered: dict[str, list[float]] = field(default_factory=dict)  # decision id -> when each was seen
    held: int = 0
    dead_lettered: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        topics = [self.settings.topic(spec.name) for spec in (DECIDED, DELIVERED, HELD, DEADLETTER)]
        consumer = clients.consumer(self.settings, *topics, auto_offset_reset="earliest", enable_auto_commit=False,
                                    group_id=f"{self.settings.topic_prefix}bench-watcher")
        try:
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=100).items():
                    seen = time.monotonic()
                    for record in records:
                        self._saw(tp.topic, record.value, seen)
        finally:
            consumer.close()

    def _saw(self, topic: str, value: bytes, seen: float) -> None:
        if topic == self.settings.topic(DECIDED.name):
            decision = Decision.model_validate_json(value)
            found = _REFERENCE.search(decision.intel.information)
            if found is None or decision.decision_id in self.decision_reference:
                return  # not the bench's, or a revision of a decision already seen
            self.decision_reference[decision.decision_id] = found.group(1)
            self.expected[decision.decision_id] = len(notifications_for(decision, self.table))
            self.decided.setdefault(found.group(1), seen)
        elif topic == self.settings.topic(DELIVERED.name):
            record = NotificationRecord.model_validate_json(value)
            if record.status.value == "delivered":
                self.delivered.setdefault(record.decision_id, []).append(seen)
        elif topic == self.settings.topic(HELD.name):
            self.held += 1
        else:
            self.dead_lettered += 1

    def notified(self) -> dict[str, float]:
        """Decision id -> when its last notification was seen, for decisions whose notifications all were."""
        return {decision_id: max(times[:wanted]) for decision_id, wanted in list(self.expected.items())
                if wanted and len(times := self.delivered.get(decision_id, [])) >= wanted}

    def finished(self, count: int) -> bool:
        accounted = len(self.decided) + self.held + self.dead_lettered
        wanted = sum(1 for n in list(self.expected.values()) if n)
        return accounted >= count and len(self.notified()) >= wanted

    def stop(self) -> None:
        self._stop.set()


def percentiles(values: Sequence[float]) -> dict[str, float | int] | None:
    """p50, p90, p99 and max (nearest rank) in milliseconds, and how many values; None for no values."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(q: int) -> float:
        return round(1000 * ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)], 2)

    return {"count": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99),
            "max": round(1000 * ordered[-1], 2)}


def timeline(started: float, sent: dict[str, float], watcher: Watcher, notified: dict[str, float]) -> list[
        dict[str, Any]]:
    """Per second since the first write: submissions written, decided and notified in that second, and the
    received → decided latency of those decided in it."""
    seconds: dict[int, dict[str, Any]] = {}

    def bucket(at: float) -> dict[str, Any]:
        return seconds.setdefault(int(at - started), {"written": 0, "decided": 0, "notified": 0, "latencies": []})

    for at in sent.values():
        bucket(at)["written"] += 1
    for reference, at in watcher.decided.items():
        entry = bucket(at)
        entry["decided"] += 1
        entry["latencies"].append(at - sent[reference])
    for at in notified.values():
        bucket(at)["notified"] += 1
    last = max(seconds, default=-1)
    rows = []
    for second in range(last + 1):
        entry = seconds.get(second, {"written": 0, "decided": 0, "notified": 0, "latencies": []})
        latency = percentiles(entry.pop("latencies"))
        rows.append({"second": second, **entry, "p50_ms": latency and latency["p50"],
                     "p99_ms": latency and latency["p99"]})
    return rows


@contextmanager
def _platform(data: Path) -> Iterator[tuple[PlatformSettings, dict[str, str]]]:
    """A broker (ours, unless CPI_KAFKA_BOOTSTRAP names one), fresh topics and keys; the settings and the
    environment a process of the run connects with. The topics are deleted afterwards."""
    broker = None
    bootstrap = os.environ.get("CPI_KAFKA_BOOTSTRAP")
    if not bootstrap:
        broker = LocalBroker(data / "kafka", port=free_port(), controller_port=free_port())
        bootstrap = broker.start()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = PlatformSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix, data_dir=data)
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": bootstrap, "CPI_TOPIC_PREFIX": prefix,
           "CPI_DATA_DIR": str(data), "CPI_LOG_LEVEL": "warning"}
    if broker is not None:  # our own (secured) broker: this process and the workers log in as its admin
        admitted = read_env_file(broker.admin_env_file)
        settings = with_connection(settings, admitted)
        env = security_environment(env, admitted)
    try:
        apply_topics(settings)
        yield settings, env
    finally:
        admin = clients.admin_client(settings)
        try:
            admin.delete_topics([t for t in admin.list_topics() if t.startswith(prefix)])
        finally:
            admin.close()
        if broker is not None:
            broker.stop()


@contextmanager
def _workers(env: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    ports = {name: free_port() for name in WORKERS}
    processes = {name: subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "services.cli", "worker", name],
        env={**env, "CPI_WORKER_PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) for name, port in ports.items()}
    try:
        for name, process in processes.items():
            wait_until_ready(f"http://127.0.0.1:{ports[name]}/readyz", process=process)
        yield processes
    finally:
        for process in processes.values():
            stop_process(process)


def through_kafka(run: BenchRun, *, inspect: Callable[[PlatformSettings], None] | None = None) -> dict[str, Any]:
    """Run the pipeline in `run`'s mode, then the raw relay on the same values; the report (see module doc).
    `inspect` is called with the run's settings once the pipeline has finished, before its topics go."""
    with tempfile.TemporaryDirectory() as tmp, _platform(Path(tmp)) as (settings, env):
        ensure_keys(settings)  # before the workers start, so they find one set of keys
        transport_key = load_edge_keys(settings)
        generated = bench_submissions(run.records)
        records = [(reference, received_record(s, transport_key)) for reference, s in generated]
        values = [(record.submission_id.encode(), encode(record)) for _, record in records]
        table = routing_from(NotifierSettings(data_dir=settings.data_dir), env)
        watcher = Watcher(settings, table)
        watching = threading.Thread(target=watcher.run, daemon=True)
        watching.start()
        with _workers(env) as processes:
            cpu_before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
            sent, started, produced = _feed(settings, run, [r for r, _ in records], values)
            limit = time.monotonic() + max(120.0, run.records / 10)
            while not watcher.finished(run.records) and time.monotonic() < limit:
                time.sleep(0.05)
            finished_at = time.monotonic()
            cpu = {name: round(cpu_seconds(p.pid) - cpu_before[name], 3) for name, p in processes.items()}
        watcher.stop()
        watching.join(10)
        if inspect is not None:
            inspect(settings)
        relay = raw_relay(settings, env, values, RECEIVED.partitions, WorkerSettings().batch_max_records)
    return _report(run, values, watcher, sent, started, produced, finished_at, cpu, relay.report())


def _feed(settings: PlatformSettings, run: BenchRun, references: list[str],
          values: list[tuple[bytes, bytes]]) -> tuple[dict[str, float], float, float]:
    """Write every value to the received topic (at once, or at the run's rate); when each was written, when the
    first was, and how long writing took."""
    topic = settings.topic(RECEIVED.name)
    # A backlog is written in batches; open-loop records go out one by one, as the edge would send them.
    producer = clients.producer(settings, linger_ms=5 if run.mode == "backlog" else 0, enable_idempotence=True)
    producer.partitions_for(topic)  # connected before the clock starts
    sent: dict[str, float] = {}
    started = time.monotonic()
    try:
        for n, (reference, (key, value)) in enumerate(zip(references, values, strict=True)):
            if run.rate is not None:
                due = started + n / run.rate
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
            sent[reference] = time.monotonic()
            producer.send(topic, value=value, key=key)
        producer.flush()
    finally:
        producer.close()
    return sent, started, time.monotonic() - started


def _shares(times: list[float], count: int) -> dict[str, float | None]:
    """Seconds from the first write until 50, 90, 99 and 100 % of `count` submissions were decided."""
    def at(share: int) -> float | None:
        needed = math.ceil(count * share / 100)
        return round(times[needed - 1], 3) if len(times) >= needed else None

    return {f"{share}%": at(share) for share in (50, 90, 99, 100)}


def _report(run: BenchRun, values: list[tuple[bytes, bytes]], watcher: Watcher, sent: dict[str, float],
            started: float, produced: float, finished_at: float, cpu: dict[str, float],
            relay: dict[str, Any]) -> dict[str, Any]:
    notified = watcher.notified()
    complete = watcher.finished(run.records)
    seconds = finished_at - started
    per_second = round(run.records / seconds, 1) if complete else None
    sizes = [len(value) for _, value in values]
    to_decided = [at - sent[reference] for reference, at in watcher.decided.items()]
    to_notified = [at - watcher.decided[watcher.decision_reference[d]] for d, at in notified.items()]
    report: dict[str, Any] = {
        "mode": run.mode, "records": run.records, "rate": run.rate, "partitions": RECEIVED.partitions,
        "value_bytes": {"mean": round(sum(sizes) / len(sizes)), "max": max(sizes)},
        "pipeline": {
            "complete": complete, "produce_seconds": round(produced, 3), "all_seconds": round(seconds, 3),
            "per_second": per_second, "decided": len(watcher.decided), "held": watcher.held,
            "dead_lettered": watcher.dead_lettered, "notifications": sum(watcher.expected.values()),
            "notified_decisions": len(notified),
        },
        # When each share of the submissions had been decided: a backlog's last partial release pool waits up to
        # CPI_RELEASE_MAX_WAIT_SECONDS (the sanitiser's mixing), which the whole-run figure includes.
        "decided_by_seconds": _shares(sorted(at - started for at in watcher.decided.values()), run.records),
        "latency_ms": {"received_to_decided": percentiles(to_decided),
                       "decided_to_notified": percentiles(to_notified)},
        "cpu_seconds": cpu,
        "cpu_ms_per_record": {name: round(1000 * value / run.records, 3) for name, value in cpu.items()},
        "raw_relay": relay,
        # Capacity against capacity only in a backlog; an open-loop run's throughput is its rate.
        "pipeline_to_raw": (round(per_second / relay["per_second"], 4)
                            if run.mode == "backlog" and per_second is not None else None),
        "offered_to_raw": round(run.rate / relay["per_second"], 4) if run.rate is not None else None,
        "timeline": timeline(started, sent, watcher, notified),
    }
    return report
