"""The fault suite's one harness (issue 14): drive generated submissions through a real pipeline, count what
reached each topic and each receiving server, and report lost, duplicates, dead-lettered and the time to drain.

The pipeline itself is `cpi up` (tests/e2e/conftest.py `running_pipeline`), the receivers are the real SMTP
and HTTP servers of tests/mail_helpers.py and tests/integration/notifier/test_delivery.py, the topics are read
with tests/kafka_helpers.py: this module only adds what the fault scenarios need on top of them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from schemas import Decision
from schemas.topics import ACCEPTED, DEADLETTER, DECIDED, DELIVERED, OUTCOME_TOPICS, RECEIVED, SANITISED, TopicSpec
from services.common.kafka import clients
from services.common.kafka.broker import free_port
from services.common.processes import stop_process, wait_until_ready
from services.common.settings import PlatformSettings
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import submission
from tests.kafka_helpers import read_all
from tests.mail_helpers import Inbox

# A submission's marker travels in its information text, so it can be found on every topic after the
# sanitiser (before it, the submission is sealed) without anything of the source.
_MARKER = re.compile(rb"ZX[0-9a-f]{12}")


def new_marker() -> str:
    return f"ZX{uuid.uuid4().hex[:12]}"


@dataclass
class Load:
    """What was submitted through the edge: the markers it accepted (202), and those it did not, with why (the
    status it answered, or the client's error: a timeout leaves the submitter not knowing)."""

    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def submitted(self) -> int:
        return len(self.accepted) + len(self.refused)


def submit(pipeline: Pipeline, count: int, load: Load | None = None, *, pause: float = 0.0) -> Load:
    """Post `count` generated submissions to the edge's API. An answer other than 202 (the edge cannot reach
    the broker), or none, counts as refused: the submitter was not told it was taken, so it is not owed a
    decision (though it may still get one: see `Tally.refused_yet_decided`)."""
    load = load or Load()
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            marker = new_marker()
            try:
                answer = client.post(f"{pipeline.api_url}/api/v1/submissions", json=submission(marker),
                                     headers=pipeline.api_auth)
            except httpx.HTTPError as exc:
                load.refused[marker] = type(exc).__name__
            else:
                if answer.status_code == 202:
                    load.accepted.append(marker)
                else:
                    load.refused[marker] = str(answer.status_code)
            if pause:
                time.sleep(pause)
    return load


def markers_on(pipeline: Pipeline, spec: TopicSpec) -> Counter[str]:
    """How many records of `spec`'s topic carry each submission marker."""
    found: Counter[str] = Counter()
    for record in read_all(pipeline.bootstrap, pipeline.topic(spec.name)):
        found.update({m.decode() for m in _MARKER.findall(record.value or b"")})
    return found


def repeats(records: Sequence[Any], key: str) -> int:
    """Records beyond the first for each value of the JSON field `key` (a redelivery's repeats)."""
    seen = Counter(json.loads(r.value)[key] for r in records)
    return sum(times - 1 for times in seen.values())


@dataclass(frozen=True)
class Tally:
    """One scenario's figures, counted from the topics and the sealed store."""

    submitted: int
    accepted: int
    sanitised: int
    decided: int
    lost: list[str]
    refused_yet_decided: int  # the submitter got no 202 (a timeout, say), and the pipeline took it all the same
    duplicate_decisions: int  # repeated records on cpi.outcome.decided.v1 (same decision id)
    sealed_rows: int
    duplicate_sealed: int  # sealed rows beyond one per intel decided by this pipeline
    delivered: int
    duplicate_delivered: int
    dead_lettered: int
    drain_seconds: float

    def line(self, scenario: str) -> str:
        return (f"\n{scenario}: submitted {self.submitted}, accepted {self.accepted}, sanitised {self.sanitised}, "
                f"decided {self.decided}, lost {len(self.lost)}, refused yet decided {self.refused_yet_decided}, "
                f"duplicate decision records "
                f"{self.duplicate_decisions}, sealed rows {self.sealed_rows} (duplicates {self.duplicate_sealed}), "
                f"delivered records {self.delivered} (repeated {self.duplicate_delivered}), dead-lettered "
                f"{self.dead_lettered}, drained in {self.drain_seconds:.1f} s")


def sealed_rows(pipeline: Pipeline) -> int:
    """Rows in the pipeline's SQLite sealed store (the default, <data>/sealed.db)."""
    with sqlite3.connect(pipeline.data_dir / "sealed.db") as db:
        count: int = db.execute("SELECT COUNT(*) FROM sealed_records").fetchone()[0]
    return count


def _is_decision(value: bytes | None) -> bool:
    """Whether a record is a real decision (a fault scenario may have written poison to the topic)."""
    try:
        Decision.model_validate_json(value or b"")
    except ValueError:
        return False
    return True


def drain(pipeline: Pipeline, load: Load, started: float, seconds: float = 120) -> Tally:
    """Wait until every accepted submission has its decision (or `seconds` pass), then count everything."""
    wanted = set(load.accepted)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not wanted <= set(markers_on(pipeline, DECIDED)):
        time.sleep(1)
    drained = time.monotonic() - started
    decided = markers_on(pipeline, DECIDED)
    decisions = [r for r in read_all(pipeline.bootstrap, pipeline.topic(DECIDED.name)) if _is_decision(r.value)]
    # Every intel the pipeline decided has one sealed row; more rows than intels are duplicate seals.
    intels = {json.loads(r.value)["intel_id"] for r in decisions}
    decisions = [r for r in decisions if wanted & {m.decode() for m in _MARKER.findall(r.value)}]
    delivered = read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
    rows = sealed_rows(pipeline)
    return Tally(
        submitted=load.submitted, accepted=len(load.accepted),
        sanitised=len(wanted & set(markers_on(pipeline, SANITISED))), decided=len(wanted & set(decided)),
        lost=sorted(wanted - set(decided)), refused_yet_decided=len(set(load.refused) & set(decided)),
        duplicate_decisions=repeats(decisions, "decision_id"),
        sealed_rows=rows, duplicate_sealed=rows - len(intels), delivered=len(delivered),
        duplicate_delivered=repeats(delivered, "notification_id"),
        dead_lettered=len(read_all(pipeline.bootstrap, pipeline.topic(DEADLETTER.name))), drain_seconds=drained,
    )


def notified(pipeline: Pipeline, load: Load, seconds: float = 60) -> bool:
    """Whether every decision of `load` (decided by now: call it after `drain`) that names a team comes to have
    a delivered record for each team."""
    deadline = time.monotonic() + seconds
    # Read once: the load is decided by now (`drain`), and validating every decision each second starved the
    # receiving servers in this process of the time to take the notifications being waited for.
    wanted = {(d["decision_id"], team) for d in decisions_of(pipeline, load)
              for team in d["outcomes"] if team in ("crime_desk", "safeguarding")}
    while time.monotonic() < deadline:
        records = read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
        if wanted and wanted <= {(json.loads(r.value)["decision_id"], json.loads(r.value)["team"]) for r in records}:
            return True
        time.sleep(1)
    return False


def told(pipeline: Pipeline, inbox: Inbox, posts: Sequence[dict[str, Any]],
         *loads: Load) -> tuple[Counter[str], set[str]]:
    """How many times each notification of the loads' decisions reached its team, counted at the receiving
    servers by the key it carried (an e-mail's Message-ID, a webhook call answered 2xx by its Idempotency-Key);
    and the notifications that have a delivered record."""
    from tests.reliability.test_notifier_crash import receipts

    made = [Decision.model_validate(d) for load in loads for d in decisions_of(pipeline, load)]
    got = receipts(inbox, [p for p in posts if 200 <= p["status"] < 300], made)
    delivered = {json.loads(r.value)["notification_id"]
                 for r in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))}
    return Counter(key for _team, _decision, key in got), delivered


def check_nothing_lost_or_repeated(pipeline: Pipeline, load: Load, tally: Tally, inbox: Inbox,
                                   posts: Sequence[dict[str, Any]], notify_seconds: float) -> Counter[str]:
    """What a scenario in which no pipeline process dies (a broker does) must show: every acknowledged submission
    decided, no intel sealed twice, no worker given up (`cpi up` still runs), and every notification received
    once, each with its delivered record (no crash, so no crash window). Returns the receipts per key."""
    assert tally.lost == [], f"{len(tally.lost)} acknowledged submissions were never decided"
    assert tally.duplicate_sealed == 0
    assert pipeline.processes["up"].poll() is None, "a worker gave up and `cpi up` stopped"
    assert notified(pipeline, load, seconds=notify_seconds), "not every decision's teams have a delivered record"
    received, delivered = told(pipeline, inbox, posts, load)
    assert set(received) == delivered  # every notification sent has its record, and only those
    assert max(received.values()) == 1, {k: n for k, n in received.items() if n > 1}
    return received


def decisions_of(pipeline: Pipeline, load: Load) -> list[dict[str, Any]]:
    """The decision records (as JSON) of the load's submissions, refused ones the pipeline took too, repeats
    included."""
    wanted = set(load.accepted) | set(load.refused)
    return [json.loads(r.value) for r in read_all(pipeline.bootstrap, pipeline.topic(DECIDED.name))
            if _is_decision(r.value) and wanted & {m.decode() for m in _MARKER.findall(r.value)}]


def produce_at(bootstrap: str, topic: str, value: bytes, key: bytes) -> tuple[int, int]:
    """Write one record as the administrator; returns its (partition, offset), which a dead letter must name.
    The producer takes records up to the broker's own limit (its default request size is a little under)."""
    producer = clients.producer(PlatformSettings(kafka_bootstrap=bootstrap), max_request_size=2 * 1024 * 1024)
    try:
        metadata = producer.send(topic, value=value, key=key).get(timeout=30)
    finally:
        producer.close()
    return metadata.partition, metadata.offset


class RestartableSmtp:
    """A real SMTP server (aiosmtpd) on one port that can be stopped (connections refused) and started again,
    keeping one inbox across its lives: a team's mail server down for a while."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextmanager
def restartable_smtp() -> Iterator[RestartableSmtp]:
    server = RestartableSmtp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# What identifies one record on each topic, so that a redelivery's repeat can be told from a new record.
IDENTITY: dict[TopicSpec, str] = {
    RECEIVED: "submission_id", ACCEPTED: "submission_id", SANITISED: "intel_id", DECIDED: "decision_id",
    **dict.fromkeys(OUTCOME_TOPICS.values(), "decision_id"), DELIVERED: "notification_id",
}


def repeated_records(pipeline: Pipeline) -> dict[str, int]:
    """Per topic (short name), the records beyond the first for each identity (`IDENTITY`); poison skipped."""
    found = {}
    for spec, key in IDENTITY.items():
        records = []
        for record in read_all(pipeline.bootstrap, pipeline.topic(spec.name)):
            try:
                if key in json.loads(record.value or b""):
                    records.append(record)
            except ValueError:
                continue
        found[spec.name.removeprefix("cpi.").removesuffix(".v1")] = repeats(records, key)
    return found


@dataclass
class Workers:
    """Worker processes a test runs itself beside a pipeline whose `cpi up` runs only the edge and the console
    (`running_pipeline(..., workers=())`; `cpi up` stops when a child dies, and these are killed on purpose).

    Each replica runs as its stage's Kafka principal with static membership (its own group instance id, as
    the manifests set it from the pod's name), on the pipeline's data directory (one sealed store, one
    ledger), and writes one log per life under the pipeline's logs, so `Pipeline.log_text` reads them too."""

    pipeline: Pipeline
    extra: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    lives: dict[str, list[Path]] = field(default_factory=dict)
    killed: list[Path] = field(default_factory=list)  # the logs of lives ended by SIGKILL

    def start(self, replica: str, *, wait: bool = False) -> None:
        """Start `replica` (`<stage>` or `<stage>-<n>`); with `wait`, return once it holds partitions."""
        stage = replica.partition("-")[0]
        port = self.ports.setdefault(replica, free_port())
        lives = self.lives.setdefault(replica, [])
        log_path = self.pipeline.data_dir / "logs" / f"{replica}-{len(lives)}.log"
        lives.append(log_path)
        env = {**self.pipeline.as_principal(f"cpi-{stage}"), "CPI_WORKER_PORT": str(port),
               "CPI_GROUP_INSTANCE_ID": replica,
               "PYTHONUNBUFFERED": "1",  # a SIGKILLed worker's last log lines are what a test reads
               **self.extra}
        with open(log_path, "wb") as log:
            self.processes[replica] = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", stage],
                                                       env=env, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready(replica)

    def wait_ready(self, replica: str, timeout: float = 180.0) -> None:
        wait_until_ready(f"http://127.0.0.1:{self.ports[replica]}/readyz", process=self.processes[replica],
                         timeout=timeout)

    def sigkill(self, replica: str) -> None:
        """SIGKILL `replica`, as a crashed pod would end: no clean leave, no commit, no flush."""
        process = self.processes[replica]
        assert process.poll() is None, f"{replica} had already exited with {process.returncode}"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.killed.append(self.lives[replica][-1])

    def stop(self, replica: str) -> None:
        """Stop `replica` cleanly (SIGTERM), as a scale-down or a rolling update would."""
        stop_process(self.processes[replica])

    def alive(self) -> list[str]:
        """The replicas running now (one that gave up and exited is not)."""
        return [name for name, process in self.processes.items() if process.poll() is None]

    def stop_all(self) -> None:
        for process in self.processes.values():
            stop_process(process)


def kill_in_turn(workers: Workers, replicas: Sequence[str], kills: int, every: float) -> float:
    """SIGKILL `replicas` in turn, one every `every` seconds, `kills` times in all; each is started again at
    once (not waited for: the next kill may come before it is ready, as in a crash loop). Returns the seconds
    the kills took."""
    started = time.monotonic()
    for n in range(kills):
        time.sleep(max(0.0, started + n * every - time.monotonic()))
        replica = replicas[n % len(replicas)]
        workers.sigkill(replica)
        workers.start(replica)
    return time.monotonic() - started
