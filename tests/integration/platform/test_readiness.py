"""A worker's /readyz says ready only once it has joined its consumer group and holds partitions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.topics import DEADLETTER, DECIDED, OUTCOME_TOPICS, SANITISED
from services.common.kafka import clients
from services.common.kafka.broker import free_port
from services.common.processes import stop_process
from services.common.settings import PlatformSettings

pytestmark = pytest.mark.kafka


def _group(settings: PlatformSettings, group_id: str) -> dict[str, Any]:
    admin = clients.admin_client(settings)
    try:
        described: dict[str, Any] = admin.describe_groups([group_id])[group_id]
        return described
    finally:
        admin.close()


def test_a_worker_is_ready_only_once_it_holds_its_partitions(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """Polled from the moment the router starts, /readyz answers 503 saying why until the worker has joined;
    the first time it answers 200, the consumer group is stable with this worker in it holding every
    partition of its input topic (regression, issue 14: /readyz answered 200 about a second after a restart,
    before the worker had joined its group, so a readiness probe was misled)."""
    topic_factory(SANITISED, DECIDED, DEADLETTER, *OUTCOME_TOPICS.values())
    settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
           "CPI_DATA_DIR": str(tmp_path), "CPI_WORKER_PORT": str(port := free_port())}
    with open(tmp_path / "router.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "router"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        not_ready: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while True:
            assert worker.poll() is None and time.monotonic() < deadline, (tmp_path / "router.log").read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if answer.status_code == 200:
                break
            assert answer.status_code == 503
            not_ready.append(answer.json())
            time.sleep(0.05)
        group = _group(settings, f"{topic_prefix}cpi-router")
        assert group["group_state"] == "Stable", group
        [member] = group["members"]
        assigned = {(t["topic"], p) for t in member["member_assignment"]["assigned_partitions"]
                    for p in t["partitions"]}
        assert assigned == {(settings.topic(SANITISED.name), p) for p in range(SANITISED.partitions)}
        assert all(body["ready"] is False and body["why"] for body in not_ready)
    finally:
        stop_process(worker)
