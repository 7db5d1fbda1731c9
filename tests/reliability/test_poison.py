"""Poison records at every stage (issue 14), on the whole pipeline (`cpi up`) and the real broker.

tests/e2e/test_pipeline.py shows undecodable bytes dead-lettered at each stage; this goes on to every kind of
poison a stage can be handed, written straight to its input topic between good submissions: bad bytes, a
record of a later schema version (a field v1 does not know), the largest record the topic takes, and valid
JSON of the wrong model (a raw submission, source and all, as a careless producer would write it). Each must
land on cpi.deadletter.v1 naming its origin topic, partition and offset, its stage and its error, with nothing
of the source in those headers, the logs or the metrics; and the good records around it still flow through.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from schemas import DeadLetter
from schemas.topics import ACCEPTED, DEADLETTER, DECIDED, RECEIVED, SANITISED, TopicSpec
from tests.e2e.conftest import WORKERS, Pipeline
from tests.e2e.test_pipeline import CANARY_STRINGS, submission
from tests.kafka_helpers import read_all
from tests.reliability.harness import drain, notified, produce_at, submit

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

STAGE_OF_INPUT = {RECEIVED.name: "intake", ACCEPTED.name: "sanitiser", SANITISED.name: "router",
                  DECIDED.name: "notifier"}
# The broker's default message.max.bytes is 1,048,588 for a whole batch; a record this size fits with its
# batch overhead, and its dead letter (the same bytes and a few hundred bytes of headers) must fit too.
LARGEST = 1_048_000


def poisons(pipeline: Pipeline, origin: TopicSpec) -> dict[str, bytes]:
    """The four kinds of poison for `origin`'s stage, each with a tag of its own so its dead letter is found."""
    tag = uuid.uuid4().hex
    real = json.loads(read_all(pipeline.bootstrap, pipeline.topic(origin.name))[-1].value)
    raw_submission = {**submission(f"ZX{tag[:12]}"), "tag": tag}  # valid JSON, but a Submission: no stage's model
    return {
        "bad_bytes": b"\xff\xfe not json " + tag.encode(),
        "wrong_version": json.dumps({**real, "schema_version": "2", "tag": tag}).encode(),
        "oversize": json.dumps({"tag": tag, "padding": "x" * LARGEST})[:LARGEST].encode()[:-2] + b'"}',
        "wrong_model": json.dumps(raw_submission).encode(),
    }


def metrics_text(pipeline: Pipeline) -> str:
    return "\n".join(httpx.get(f"{url}/metrics", timeout=10).text for url in pipeline.worker_urls.values())


@pytest.mark.parametrize("origin", [RECEIVED, ACCEPTED, SANITISED, DECIDED], ids=lambda s: s.name)
def test_every_kind_of_poison_is_dead_lettered_with_its_origin_and_the_good_records_around_it_flow(
    pipeline: Pipeline, origin: TopicSpec,
) -> None:
    """Bad bytes, a v2 record, the largest record the topic takes and valid JSON of the wrong model, written to
    one stage's input topic between good submissions: each lands once on cpi.deadletter.v1, unchanged, with
    the origin topic/partition/offset it was written at, the stage that read it and an error code and message;
    no header, log line or metric carries the source; every good submission before and after is decided (and,
    past the notifier's poison, notified). Regression (issue 14): the largest record an input topic takes had a
    dead letter faust's producer refused as too large; the agent crashed, was restarted on the next input, and
    that record was never dead-lettered."""
    started = time.monotonic()
    before = submit(pipeline, 3)
    assert len(before.accepted) == 3
    assert not drain(pipeline, before, started, seconds=60).lost  # so `origin` holds a real record to reshape
    written = {}
    for kind, value in poisons(pipeline, origin).items():
        written[kind] = (value, produce_at(pipeline.bootstrap, pipeline.topic(origin.name), value,
                                           key=f"poison-{kind}".encode()))
    after = submit(pipeline, 3)
    tally = drain(pipeline, after, started, seconds=90)
    assert len(after.accepted) == 3 and tally.lost == []
    assert tally.duplicate_sealed == 0
    if origin is DECIDED:  # the notifier's own output shows it went on past the poison
        assert notified(pipeline, after, seconds=60)

    letters: dict[bytes, list[Any]] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        letters = {}
        for record in read_all(pipeline.bootstrap, pipeline.topic(DEADLETTER.name)):
            letters.setdefault(record.value, []).append(record)
        if all(value in letters for value, _where in written.values()):
            break
        time.sleep(1)
    for kind, (value, (partition, offset)) in written.items():
        assert value in letters, f"the {kind} poison on {origin.name} was not dead-lettered"
        assert len(letters[value]) == 1, f"the {kind} poison was dead-lettered {len(letters[value])} times"
        record = letters[value][0]
        letter = DeadLetter.from_headers(record.headers)
        assert (letter.origin_topic, letter.origin_partition, letter.origin_offset) == (
            pipeline.topic(origin.name), partition, offset), kind
        assert letter.stage == STAGE_OF_INPUT[origin.name] and letter.stage in WORKERS
        assert letter.error_code and letter.error
        assert record.key == f"poison-{kind}".encode()
        headers = b" ".join(v for _k, v in record.headers).decode(errors="replace")
        assert not [c for c in CANARY_STRINGS if c in headers], f"the {kind} letter's headers quote the source"
    seen = pipeline.log_text() + metrics_text(pipeline)
    assert not [c for c in CANARY_STRINGS if c in seen], "a log line or metric quotes the source"
    print(f"\npoison on {origin.name}: 4 kinds dead-lettered by {STAGE_OF_INPUT[origin.name]}, "
          f"{len(before.accepted) + len(after.accepted)} good submissions around them decided, "
          f"in {time.monotonic() - started:.1f} s")
