"""`cpi dlq list|replay`: see what was dead-lettered and, once the cause is fixed, send it back."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import ValidationError

from schemas import DeadLetter
from schemas.topics import ACCEPTED, DEADLETTER, DECIDED, RECEIVED, RETRY, REVIEWED, SANITISED
from services.common.errors import CpiError
from services.common.kafka.reading import read_to_end
from services.common.settings import PlatformSettings

REPLAY_GROUP = "cpi-dlq-replay"


def _letters(settings: PlatformSettings, group: str | None) -> tuple[Any, list[Any]]:
    return read_to_end(settings, settings.topic(DEADLETTER.name), group_id=group)


def describe(record: Any) -> dict[str, Any]:
    """A dead letter as an operator sees it: where it came from, why, and how big it is (not its bytes)."""
    try:
        letter: dict[str, Any] = DeadLetter.from_headers(record.headers or []).model_dump(mode="json")
    except ValidationError:
        letter = {"error_code": "headers_unreadable"}
    return {"offset": record.offset, "partition": record.partition, "bytes": len(record.value or b""), **letter}


def _list(args: argparse.Namespace) -> int:
    consumer, records = _letters(PlatformSettings(), None)
    consumer.close()
    for record in records:
        entry = describe(record)
        if args.stage in (None, entry.get("stage")):
            print(json.dumps(entry))
    return 0


# What a dead letter may be sent back to: the topics the pipeline's own stages read (each worker's
# `register_stage(source=...)`): intake reads received, the sanitiser accepted, the router sanitised and reviewed,
# the notifier decided and its retry topic. A dead letter's origin header is only a claim: anyone who
# could write the dead-letter topic could name any topic there.
REPLAY_TARGETS = (RECEIVED, ACCEPTED, SANITISED, REVIEWED, DECIDED, RETRY)


class ReplayRefused(CpiError):
    """Some dead letters name an origin that is not one of the pipeline's input topics."""


@dataclass(frozen=True)
class Step:
    """What replay does with one dead letter: send it to `target`, skip it, or refuse it."""

    partition: int
    offset: int
    stage: str | None
    action: Literal["replay", "skip", "refuse"]
    target: str | None
    reason: str = ""


def plan_replay(entries: Sequence[dict[str, Any]], allowed: Collection[str], stage: str | None) -> list[Step]:
    """Pure: each described dead letter's step, given the topic names replay may write to."""
    steps = []
    for entry in entries:
        target = entry.get("origin_topic")
        where = {"partition": entry["partition"], "offset": entry["offset"], "stage": entry.get("stage")}
        if stage not in (None, entry.get("stage")):
            steps.append(Step(**where, action="skip", target=target, reason="another stage"))
        elif target is None:
            steps.append(Step(**where, action="skip", target=None, reason="headers unreadable"))
        elif target not in allowed:
            steps.append(Step(**where, action="refuse", target=target,
                              reason="not one of the pipeline's input topics"))
        else:
            steps.append(Step(**where, action="replay", target=target))
    return steps


def replay_targets(settings: PlatformSettings) -> frozenset[str]:
    """The prefixed names of the topics replay may write to."""
    return frozenset(settings.topic(spec.name) for spec in REPLAY_TARGETS)


def _refusal(steps: Sequence[Step], allowed: Collection[str]) -> ReplayRefused:
    names = ", ".join(f"{s.target!r} (partition {s.partition}, offset {s.offset})" for s in steps)
    return ReplayRefused(f"{len(steps)} dead letter(s) name a topic the pipeline does not read from: {names}. "
                         f"Replay sends only to {', '.join(sorted(allowed))}. Nothing was sent; --dry-run "
                         "shows every letter's target, --skip-refused sends the rest and passes these over.")


def _replay(args: argparse.Namespace) -> int:
    """Republish each not-yet-replayed dead letter, unchanged, to the input topic it came from.

    A consumer group remembers what was replayed, so running it twice sends nothing twice. A letter
    naming any other topic is refused: nothing at all is sent unless `--skip-refused` is given (then
    the refused are passed over for good). `--dry-run` prints every letter's step and sends nothing.
    """
    from services.common.kafka import clients

    settings = PlatformSettings()
    allowed = replay_targets(settings)
    consumer, records = _letters(settings, REPLAY_GROUP)
    producer = None
    try:
        steps = plan_replay([describe(r) for r in records], allowed, args.stage)
        refused = [step for step in steps if step.action == "refuse"]
        if args.dry_run:
            for step in steps:
                print(json.dumps(asdict(step)))
        elif refused and not args.skip_refused:
            raise _refusal(refused, allowed)
        else:
            producer = clients.producer(settings)
            for record, step in zip(records, steps, strict=True):
                if step.action == "replay":
                    producer.send(step.target, value=record.value, key=record.key).get(timeout=30)
            producer.flush()
            consumer.commit()
    finally:
        if producer is not None:
            producer.close()
        consumer.close()
    counts = Counter(step.action for step in steps)
    print(json.dumps({"replayed": counts["replay"], "skipped": counts["skip"], "refused": counts["refuse"],
                      "dry_run": args.dry_run}))
    return 0


def register(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="the dead-letter topic")
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="what was dead-lettered, where from and why")
    listing.add_argument("--stage", help="only this stage's dead letters")
    listing.set_defaults(run=_list)
    replay = actions.add_parser("replay", help="send dead letters back to their origin input topics (once)")
    replay.add_argument("--stage", help="only this stage's dead letters")
    replay.add_argument("--dry-run", action="store_true", help="print where each dead letter would go; send nothing")
    replay.add_argument("--skip-refused", action="store_true",
                        help="send the rest when some name a topic that is not a pipeline input")
    replay.set_defaults(run=_replay)
