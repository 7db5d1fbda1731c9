"""`cpi dlq list|replay`: see what was dead-lettered and, once the cause is fixed, send it back."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

from schemas import DeadLetter
from schemas.topics import DEADLETTER
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


def _replay(args: argparse.Namespace) -> int:
    """Republish each not-yet-replayed dead letter, unchanged, to the topic it came from.

    A consumer group remembers what was replayed, so running it twice sends nothing twice.
    """
    from services.common.kafka import clients

    settings = PlatformSettings()
    consumer, records = _letters(settings, REPLAY_GROUP)
    producer = clients.producer(settings)
    replayed = skipped = 0
    try:
        for record in records:
            entry = describe(record)
            if args.stage not in (None, entry.get("stage")) or "origin_topic" not in entry:
                skipped += 1
                continue
            if not args.dry_run:
                producer.send(entry["origin_topic"], value=record.value, key=record.key).get(timeout=30)
            replayed += 1
        if not args.dry_run:
            producer.flush()
            consumer.commit()
    finally:
        producer.close()
        consumer.close()
    print(json.dumps({"replayed": replayed, "skipped": skipped, "dry_run": args.dry_run}))
    return 0


def register(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="the dead-letter topic")
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="what was dead-lettered, where from and why")
    listing.add_argument("--stage", help="only this stage's dead letters")
    listing.set_defaults(run=_list)
    replay = actions.add_parser("replay", help="send dead letters back to their origin topics (once)")
    replay.add_argument("--stage", help="only this stage's dead letters")
    replay.add_argument("--dry-run", action="store_true")
    replay.set_defaults(run=_replay)
