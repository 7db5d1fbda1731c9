"""A three-broker local KRaft cluster (replication 3, min.insync.replicas 2, acks=all) from the same official jars
as the single broker, with the whole pipeline (`cpi up`) on it, and the leader of the partition every submission
is first written to SIGKILLed repeatedly mid-stream and restarted (issue 14).

The cluster is this test's own (services/common/kafka/broker.py `LocalCluster`), so the session's broker is
untouched. Each time, the test waits until every partition of the pipeline's topics has all three replicas in
sync again before the next kill: a second node down while the first is still catching up would leave fewer than
min.insync.replicas, and writes would rightly wait. Every submission the edge acknowledged (202) must be
decided; no process dies, so no intel may be sealed twice and no team told twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.topics import ALL_TOPICS, RECEIVED
from services.common.kafka.broker import LocalBroker, LocalCluster
from services.common.kafka.clients import admin_client
from services.common.settings import PlatformSettings
from tests.e2e.conftest import running_pipeline
from tests.integration.notifier.test_delivery import SECRET, http_server
from tests.kafka_helpers import connect_as_administrator
from tests.reliability.harness import Load, RestartableSmtp, check_nothing_lost_or_repeated, drain, submit
from tests.reliability.test_broker_kill import sigkill

__all__ = ["http_server"]

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture
def cluster(long_only: None, tmp_path_factory: pytest.TempPathFactory,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    """A three-node local cluster of this test's own, this process connected to it as its administrator."""
    started = LocalCluster.on_free_ports(tmp_path_factory.mktemp("cluster"))
    started.start()
    connect_as_administrator(monkeypatch, started)  # type: ignore[arg-type] - it reads admin_env_file and workdir
    try:
        yield started
    finally:
        started.stop()


def partitions(bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    """Each partition of `topics` as the cluster describes it (leader_id, replica_nodes, isr_nodes)."""
    admin = admin_client(PlatformSettings(kafka_bootstrap=bootstrap), request_timeout_ms=10_000)
    try:
        return [p for t in admin.describe_topics(topics) for p in t["partitions"]]
    finally:
        admin.close()


def leader(cluster: LocalCluster, topic: str) -> LocalBroker:
    """The node that leads partition 0 of `topic` now."""
    node_id = next(p["leader_id"] for p in partitions(cluster.bootstrap, [topic]) if p["partition_index"] == 0)
    return next(node for node in cluster.nodes if node.node_id == node_id)


def in_sync(cluster: LocalCluster, topics: list[str], seconds: float = 180) -> float:
    """Wait until every partition of `topics` has all its replicas in sync; returns how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if all(len(p["isr_nodes"]) == len(p["replica_nodes"]) for p in partitions(cluster.bootstrap, topics)):
                return time.monotonic() - started
        except Exception:  # noqa: S110 - a node just restarted may not answer yet; asked again below
            pass
        time.sleep(1)
    raise AssertionError(f"the replicas were not all in sync again within {seconds:.0f}s")


@pytest.mark.timeout(2400)  # minutes of broker restarts or rebalances on a loaded machine
def test_the_partition_leader_sigkilled_repeatedly_in_a_three_broker_cluster_loses_no_acknowledged_submission(
    cluster: LocalCluster, tmp_path: Path, team_mail: RestartableSmtp, http_server: Any,
) -> None:
    """While submissions arrive at the edge, the leader of the received topic's first partition is SIGKILLed,
    left down 3 s and restarted, five times (--long only), the replicas back in sync before the next kill:
    every submission the edge answered 202 is decided, no intel is sealed twice, no worker gives up, and
    every notification reaches its team exactly once with its delivered record."""
    url, posts, _control = http_server
    extra = {"CPI_SMTP_HOST": "127.0.0.1", "CPI_SMTP_PORT": str(team_mail.port), "CPI_SAFEGUARDING_WEBHOOK": url,
             "CPI_SAFEGUARDING_WEBHOOK_SECRETS": json.dumps([SECRET]), "CPI_RATE_LIMIT_PER_MINUTE": "100000",
             "CPI_REPLICATION_FACTOR": "3", "CPI_MIN_INSYNC_REPLICAS": "2"}
    count, kills = 200, 5
    (tmp_path / "pipeline").mkdir()
    with running_pipeline(cluster.bootstrap, tmp_path / "pipeline", extra) as pipe:
        topics = [pipe.topic(spec.name) for spec in ALL_TOPICS]
        assert {len(p["replica_nodes"]) for p in partitions(cluster.bootstrap, topics)} == {3}
        load = Load()
        sender = threading.Thread(target=submit, args=(pipe, count, load), kwargs={"pause": 0.1})
        started = time.monotonic()
        sender.start()
        killed: list[int] = []
        resynced: list[float] = []
        for kill in range(kills):
            while load.submitted < (kill + 1) * count // (kills + 2) and sender.is_alive():
                time.sleep(0.1)
            node = leader(cluster, pipe.topic(RECEIVED.name))
            sigkill(node)
            killed.append(node.node_id)
            time.sleep(3)
            node.start(timeout=180)
            resynced.append(in_sync(cluster, topics))
        sender.join()
        tally = drain(pipe, load, started, seconds=300)
        received = check_nothing_lost_or_repeated(pipe, load, tally, team_mail.inbox, posts, notify_seconds=180)
        print(tally.line(f"3-broker cluster, partition leader SIGKILLed {kills}x (nodes {killed})")
              + f"; replicas in sync again {', '.join(f'{s:.1f}' for s in resynced)} s after each restart; not "
              f"taken {len(load.refused)}; {len(received)} notifications received once each")
