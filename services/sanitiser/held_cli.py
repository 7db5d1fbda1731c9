"""`cpi held list|show|redact|release`: the Intelligence Unit's review of intel the sanitiser held.

`list` prints only what the held topic shows anyone: ids, days, revisions, scores, reason codes.
`show`, `redact` and `release` open the sealed intel, which may still name its source, so each needs
what an unseal needs (the intelligence_unit role, an officer id, a written reason) and is audited in
the sealed store, granted or refused, before anything is shown or published. A held intel reaches
cpi.intel.sanitised.v1 only by `release`: nothing here runs on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import structlog
from pydantic import ValidationError

from schemas import HeldContent, HeldIntel, HeldStatus
from schemas.topics import HELD, SANITISED, TopicSpec
from services.common.days import day_timestamp
from services.common.kafka.reading import read_to_end
from services.common.keys import StoreKeys, load_unseal_keys
from services.common.serde import encode
from services.common.settings import SanitiserSettings
from services.sanitiser.adapters.sealed_store import HeldReviewDenied
from services.sanitiser.held import current, open_held, redact, released, revise
from services.sanitiser.worker import open_store

log = structlog.get_logger(__name__)

REFUSED_EXIT = 3  # as `cpi sealed unseal`


def held_state(settings: SanitiserSettings) -> dict[str, HeldIntel]:
    """Every intel on the held topic, at its current revision (released ones included)."""
    consumer, records = read_to_end(settings, settings.topic(HELD.name))
    consumer.close()
    held = []
    for record in records:
        try:
            held.append(HeldIntel.model_validate_json(record.value))
        except ValidationError:
            log.warning("held_record_undecodable", partition=record.partition, offset=record.offset)
    return current(held)


def _summary(record: HeldIntel) -> dict[str, Any]:
    return {"intel_id": record.intel_id, "held_on": record.held_on.isoformat(), "revision": record.revision,
            "status": record.status.value, "score": record.score, "reasons": record.reason_codes}


def _list(args: argparse.Namespace) -> int:
    waiting = [r for r in held_state(SanitiserSettings()).values() if r.status is not HeldStatus.RELEASED]
    for record in sorted(waiting, key=lambda r: (r.held_on, r.intel_id)):
        print(json.dumps(_summary(record)))
    return 0


def _authorised(
    args: argparse.Namespace, action: str, settings: SanitiserSettings, keys: StoreKeys, **detail: object
) -> tuple[HeldIntel, HeldContent] | None:
    """The held record and what it seals once the officer is authorised; None (and why, on stderr) if
    refused. Granted or refused, the attempt is audited first, with the revision and `detail` (counts,
    never text)."""
    record = held_state(settings).get(args.intel_id)
    refusal = None
    if record is None:
        refusal = ("not_held", "no intel with that id is held for review")
    elif record.status is HeldStatus.RELEASED:
        refusal = ("already_released", "it has already been released to cpi.intel.sanitised.v1")
    store = open_store(settings, keys)
    try:
        store.review_held(action, args.intel_id, role=args.role, officer_id=args.officer_id, reason=args.reason,
                          refusal=refusal, detail={"revision": record.revision if record else None, **detail})
    except HeldReviewDenied as exc:
        print(f"cpi: held {action} refused ({exc.code}): {exc}. The attempt has been audited.", file=sys.stderr)
        return None
    finally:
        store.close()
    assert record is not None and keys.unseal_private is not None  # refused above otherwise; the unseal path's
    return record, open_held(record, keys.unseal_private)


def _show(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    opened = _authorised(args, "show", settings, load_unseal_keys(settings))
    if opened is None:
        return REFUSED_EXIT
    record, content = opened
    shown = {**_summary(record), "reasons": [reason.model_dump() for reason in content.reasons],
             "intel": content.intel.model_dump(mode="json")}
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def _redact(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    keys = load_unseal_keys(settings)
    opened = _authorised(args, "redact", settings, keys, texts=len(args.text))
    if opened is None:
        return REFUSED_EXIT
    record, content = opened
    redaction = redact(content.intel, args.text)
    missing = [str(number) for number, found in enumerate(redaction.found, start=1) if not found]
    if missing:
        # By position, not by quoting it: the text is what the officer thinks may name the source.
        print(f"cpi: text {', '.join(missing)} of {len(args.text)} does not occur as a whole word in the held "
              "intel; nothing was redacted", file=sys.stderr)
        return 1
    assert keys.unseal_private is not None
    revised = revise(record, redaction.intel, keys.unseal_private.recipient())
    _publish(settings, [(HELD, record.intel_id, encode(revised))])
    print(json.dumps({**_summary(revised), "replaced": sum(redaction.found)}))
    return 0


def _release(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    opened = _authorised(args, "release", settings, load_unseal_keys(settings))
    if opened is None:
        return REFUSED_EXIT
    record, content = opened
    closed = released(record)
    # The intel first, then the record that says so: a crash between the two leaves it held, and
    # releasing it again is harmless (the router's decision id follows from intel id and rules), whereas
    # the other order could mark released an intel the router never got.
    _publish(settings, [(SANITISED, record.intel_id, encode(content.intel)), (HELD, record.intel_id, encode(closed))])
    print(json.dumps(_summary(closed)))
    return 0


def _publish(settings: SanitiserSettings, records: list[tuple[TopicSpec, str, bytes]]) -> None:
    """Publish in order, each acknowledged by the broker (acks=all) before the next is sent."""
    from services.common.kafka import clients

    producer = clients.producer(settings)
    try:
        for spec, key, value in records:
            # Keyed by intel id, as the sanitiser keys them, so one intel's revisions stay in order on
            # one partition; stamped with the day only, like everything after the sanitiser.
            producer.send(settings.topic(spec.name), key=key.encode(), value=value,
                          timestamp_ms=int(day_timestamp() * 1000)).get(timeout=30)
    finally:
        producer.close()


def _text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("a text to redact must not be blank")
    return value


def register(commands: Any) -> None:
    held = commands.add_parser("held", help="intel held for Intelligence Unit review (show/redact/release audited)")
    actions = held.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="intel held now: id, day, revision, status, score, reason codes")
    listing.set_defaults(run=_list)
    for name, run, what in [("show", _show, "print the held intel and its reasons, with excerpts"),
                            ("redact", _redact, "replace texts with the redaction marker: a new revision"),
                            ("release", _release, "publish the latest revision to cpi.intel.sanitised.v1")]:
        action = actions.add_parser(name, help=f"{what} (audited)")
        action.add_argument("intel_id")
        action.add_argument("--role", required=True, help="must be intelligence_unit")
        action.add_argument("--officer-id", required=True)
        action.add_argument("--reason", required=True, help="why, in writing (at least 20 characters)")
        if name == "redact":
            action.add_argument("--text", required=True, action="append", type=_text,
                                help="a text to replace, any case, as a whole word (repeat for more)")
        action.set_defaults(run=run)
