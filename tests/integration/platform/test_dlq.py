"""`cpi dlq list|replay` against a real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from schemas import DeadLetter, Outcome
from schemas.topics import DEADLETTER, OUTCOME_TOPICS, SANITISED
from tests.kafka_helpers import produce, read_all

pytestmark = pytest.mark.kafka


def _cpi(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_dead_letters_are_listed_and_replayed_to_their_origin_once(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]]
) -> None:
    """`dlq list` shows each dead letter's origin, stage and reason without its bytes; `dlq replay` sends
    the original bytes back to the origin topic, and a second replay sends nothing."""
    names = topic_factory(DEADLETTER, SANITISED)
    from services.common.kafka import clients
    from services.common.settings import PlatformSettings

    letter = DeadLetter(origin_topic=names[SANITISED.name], origin_partition=0, origin_offset=7, stage="router",
                        error_code="unprocessable", error="rules failed", dead_lettered_at=datetime.now(UTC))
    producer = clients.producer(PlatformSettings(kafka_bootstrap=kafka_bootstrap))
    producer.send(names[DEADLETTER.name], value=b"original bytes", key=b"k", headers=letter.to_headers()).get(30)
    producer.close()
    produce(kafka_bootstrap, names[DEADLETTER.name], b"no headers at all")
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix}

    listed = _cpi(env, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    entries = sorted((json.loads(line) for line in listed.stdout.splitlines()), key=lambda e: e["error_code"])
    assert [e["error_code"] for e in entries] == ["headers_unreadable", "unprocessable"]
    assert {"stage": "router", "origin_offset": 7, "bytes": 14}.items() <= entries[1].items()
    assert "original bytes" not in listed.stdout

    first = _cpi(env, "dlq", "replay")
    assert json.loads(first.stdout) == {"replayed": 1, "skipped": 1, "refused": 0, "dry_run": False}
    assert [r.value for r in read_all(kafka_bootstrap, names[SANITISED.name])] == [b"original bytes"]
    second = _cpi(env, "dlq", "replay")
    assert json.loads(second.stdout)["replayed"] == 0
    assert len(read_all(kafka_bootstrap, names[SANITISED.name])) == 1


def test_replay_sends_only_to_the_pipelines_input_topics(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]]
) -> None:
    """Regression (issue 11): replay republished to whatever topic a dead letter's header named, so a forged
    letter could put any bytes on a decision topic. Now a letter naming anything but a stage's input topic
    (here the crime-desk outcome topic) is refused with a
    clear error and nothing at all is sent; `--dry-run` lists where each would go; `--skip-refused` sends
    the rest and never the refused one."""
    names = topic_factory(DEADLETTER, SANITISED, OUTCOME_TOPICS[Outcome.CRIME_DESK])
    forged_target = names[OUTCOME_TOPICS[Outcome.CRIME_DESK].name]
    from services.common.kafka import clients
    from services.common.settings import PlatformSettings

    producer = clients.producer(PlatformSettings(kafka_bootstrap=kafka_bootstrap))
    for origin, value in ((names[SANITISED.name], b"a real letter"), (forged_target, b"a forged decision")):
        letter = DeadLetter(origin_topic=origin, origin_partition=0, origin_offset=1, stage="router",
                            error_code="unprocessable", error="x", dead_lettered_at=datetime.now(UTC))
        producer.send(names[DEADLETTER.name], value=value, headers=letter.to_headers()).get(30)
    producer.close()
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix}

    dry = _cpi(env, "dlq", "replay", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    steps = [json.loads(line) for line in dry.stdout.splitlines()[:-1]]
    assert {(s["target"], s["action"]) for s in steps} == {(names[SANITISED.name], "replay"),
                                                           (forged_target, "refuse")}
    assert json.loads(dry.stdout.splitlines()[-1]) == {"replayed": 1, "skipped": 0, "refused": 1, "dry_run": True}

    refused = _cpi(env, "dlq", "replay")
    assert refused.returncode == 2
    assert forged_target in refused.stderr and "does not read from" in refused.stderr
    assert read_all(kafka_bootstrap, names[SANITISED.name]) == []

    forced = _cpi(env, "dlq", "replay", "--skip-refused")
    assert json.loads(forced.stdout) == {"replayed": 1, "skipped": 0, "refused": 1, "dry_run": False}
    assert [r.value for r in read_all(kafka_bootstrap, names[SANITISED.name])] == [b"a real letter"]
    assert read_all(kafka_bootstrap, forged_target) == []
