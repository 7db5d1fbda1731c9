"""`cpi bench --kafka`: the four workers as separate processes on fresh topics, timed end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from schemas.topics import ACCEPTED, DECIDED, RECEIVED, SANITISED, TopicSpec
from services.bench import generated_submissions
from services.common.kafka import clients
from services.common.kafka.admin import apply_topics
from services.common.kafka.broker import LocalBroker, free_port
from services.common.kafka.principals import read_env_file, security_environment, with_connection
from services.common.keys import ensure_keys, load_edge_keys
from services.common.processes import wait_until_ready
from services.common.serde import encode
from services.common.settings import PlatformSettings
from services.intake.receiving import received_record

_WORKERS = ("intake", "sanitiser", "router", "notifier")


def _end_offsets(settings: PlatformSettings, specs: list[TopicSpec]) -> dict[str, int]:
    from kafka import TopicPartition

    consumer = clients.consumer(settings)
    try:
        totals = {}
        for spec in specs:
            name = settings.topic(spec.name)
            partitions = [TopicPartition(name, p) for p in range(spec.partitions)]
            totals[spec.name] = sum(consumer.end_offsets(partitions).values())
        return totals
    finally:
        consumer.close()


def through_kafka(count: int) -> dict[str, Any]:
    """Feed `count` received submissions; report when each stage's output topic had them all."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
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
        apply_topics(settings)
        ensure_keys(settings)  # before the workers start, so they find one set of keys
        transport_key = load_edge_keys(settings)
        ports = {name: free_port() for name in _WORKERS}
        processes = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "services.cli", "worker", name],
                env={**env, "CPI_WORKER_PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for name, port in ports.items()
        ]
        try:
            for process, port in zip(processes, ports.values(), strict=True):
                wait_until_ready(f"http://127.0.0.1:{port}/readyz", process=process)
            records = [received_record(s, transport_key) for s in generated_submissions(count, seed=11)]
            producer = clients.producer(settings, linger_ms=5)
            started = time.monotonic()
            for record in records:
                producer.send(settings.topic(RECEIVED.name), value=encode(record), key=record.submission_id.encode())
            producer.flush()
            producer.close()
            produced = time.monotonic() - started
            reached: dict[str, float] = {}
            stages = [ACCEPTED, SANITISED, DECIDED]
            limit = time.monotonic() + max(120, count)
            while len(reached) < len(stages) and time.monotonic() < limit:
                for name, total in _end_offsets(settings, stages).items():
                    if total >= count and name not in reached:
                        reached[name] = time.monotonic() - started
                time.sleep(0.2)
            result: dict[str, Any] = {"records": count, "produce_seconds": round(produced, 2)}
            for spec in stages:
                seconds = reached.get(spec.name)
                result[spec.name] = ({"all_seconds": round(seconds, 2), "per_second": round(count / seconds, 1)}
                                     if seconds else "incomplete")
            return result
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            admin = clients.admin_client(settings)
            try:
                admin.delete_topics([t for t in admin.list_topics() if t.startswith(prefix)])
            finally:
                admin.close()
            if broker is not None:
                broker.stop()
